"""The notebook schema over the CRDT, on plain pycrdt Docs (no room, no network).

Each edit is made on one replica and carried to a second one as update bytes,
as it would travel to the room; jupyter_ydoc's YNotebook is the reference for
how the schema is laid out and read back.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import nbformat
import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text

from hub_rtc.documents import (
    CELL_ID,
    BadEdit,
    CellNotFound,
    NotebookView,
    append_source,
    cell_ids,
    cell_json,
    delete_cell,
    insert_cell,
    new_cell_id,
    notebook_json,
    replace_source,
)


def code(cell_id: str, source: str, **extra: Any) -> dict[str, Any]:
    cell = {"id": cell_id, "cell_type": "code", "source": source, "metadata": {},
            "outputs": [], "execution_count": None}
    return {**cell, **extra}


NOTEBOOK: dict[str, Any] = {
    "cells": [
        {"id": "intro", "cell_type": "markdown", "source": "# Lab 1\nRead this first.",
         "metadata": {"tags": ["instructions"]}},
        code("work", "x = 1\nprint(x)", execution_count=3,
             outputs=[{"output_type": "stream", "name": "stdout", "text": "1\n"},
                      {"output_type": "execute_result", "execution_count": 3, "metadata": {},
                       "data": {"text/plain": "1"}}]),
        {"id": "pic", "cell_type": "markdown", "source": "![a](attachment:a.png)", "metadata": {},
         "attachments": {"a.png": {"image/png": "iVBORw0KGgo="}}},
        {"id": "raw", "cell_type": "raw", "source": "raw text é ✓ 😀", "metadata": {}},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def loaded(notebook: dict[str, Any] | None = None) -> Doc:
    """A Doc holding ``notebook`` exactly as jupyter-collaboration's room loads a file."""
    doc = Doc()
    YNotebook(doc).set(copy.deepcopy(notebook or NOTEBOOK))
    return doc


def replica(of: Doc) -> Doc:
    other = Doc()
    other.apply_update(of.get_update())
    return other


def source(doc: Doc, cell_id: str) -> str:
    return str(cell_json(doc, cell_id)["source"])


# -- reading --------------------------------------------------------------------------


def test_reads_what_ynotebook_reads() -> None:
    doc = loaded()
    assert notebook_json(doc) == YNotebook(doc).get()
    assert notebook_json(doc)["cells"][1]["execution_count"] == 3  # an int, not Yjs' float


def test_reads_a_valid_nbformat_notebook_equal_to_the_file() -> None:
    doc = loaded()
    read = notebook_json(doc)
    nbformat.validate(read)
    expected = copy.deepcopy(NOTEBOOK)
    expected["metadata"] = read["metadata"]  # YNotebook.set adds empty defaults to metadata
    assert read == expected


def test_an_old_minor_version_keeps_its_cell_ids_and_says_45() -> None:
    old = {**copy.deepcopy(NOTEBOOK), "nbformat_minor": 4}
    read = notebook_json(loaded(old))
    assert [c["id"] for c in read["cells"]] == ["intro", "work", "pic", "raw"]
    assert read["nbformat_minor"] == 5
    nbformat.validate(read)


def test_an_empty_document_reads_as_an_empty_notebook() -> None:
    assert notebook_json(Doc()) == {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_unknown_cells_are_reported() -> None:
    doc = loaded()
    with pytest.raises(CellNotFound, match="nope"):
        cell_json(doc, "nope")
    for edit in (lambda: replace_source(doc, "nope", "x"), lambda: append_source(doc, "nope", "x"),
                 lambda: delete_cell(doc, "nope")):
        with pytest.raises(CellNotFound):
            edit()


# -- editing, carried to a second replica --------------------------------------------


@pytest.mark.parametrize(("old_id", "new"), [
    ("work", "x = 2\nprint(x)"),              # a change in the middle
    ("work", ""),                             # everything deleted
    ("work", "x = 1\nprint(x)\nprint(2)"),    # an append
    ("raw", "raw text è ✓ 😀😀 done"),         # multi-byte characters on both sides
    ("raw", "😀"),
    ("intro", "# Lab 1\nRead this first."),   # unchanged
])
def test_replace_source_reaches_another_replica(old_id: str, new: str) -> None:
    doc = loaded()
    other = replica(doc)
    change = replace_source(doc, old_id, new)
    assert source(doc, old_id) == new
    if change.update:
        other.apply_update(change.update)
    assert source(other, old_id) == new
    assert notebook_json(other) == notebook_json(doc)
    assert change.empty == (new == NOTEBOOK_SOURCES[old_id])


NOTEBOOK_SOURCES = {c["id"]: c["source"] for c in NOTEBOOK["cells"]}


def test_replace_source_changes_only_the_part_that_differs() -> None:
    doc = loaded()
    text = doc.get("cells", type=Array)[1]["source"]
    deltas: list[Any] = []
    subscription = text.observe(lambda event: deltas.append(event.delta))
    replace_source(doc, "work", "x = 11\nprint(x)")
    text.unobserve(subscription)
    # "x = 1" -> "x = 11": one character inserted after the common prefix, nothing deleted
    assert deltas == [[{"retain": 5}, {"insert": "1"}]]


def test_replace_source_keeps_concurrent_typing_elsewhere_in_the_cell() -> None:
    doc = loaded()
    other = replica(doc)
    theirs = other.get("cells", type=Array)[1]["source"]
    theirs.insert(len(theirs), "\n# theirs")
    mine = replace_source(doc, "work", "y = 1\nprint(x)")
    doc.apply_update(other.get_update(doc.get_state()))
    other.apply_update(mine.update)
    assert source(doc, "work") == source(other, "work") == "y = 1\nprint(x)\n# theirs"


def test_append_source_adds_at_the_end() -> None:
    doc = loaded()
    other = replica(doc)
    change = append_source(doc, "raw", "\nmore ✓")
    other.apply_update(change.update)
    assert source(other, "raw") == "raw text é ✓ 😀\nmore ✓"
    assert append_source(doc, "raw", "").empty


@pytest.mark.parametrize("cell_type", ["code", "markdown", "raw"])
def test_insert_cell_makes_a_valid_cell_with_a_fresh_id(cell_type: str) -> None:
    doc = loaded()
    other = replica(doc)
    change = insert_cell(doc, 1, cell_type, "new ✓")
    other.apply_update(change.update)
    assert CELL_ID.match(change.cell_id) and change.cell_id not in NOTEBOOK_SOURCES
    assert cell_ids(other) == ["intro", change.cell_id, "work", "pic", "raw"]
    read = notebook_json(other)
    nbformat.validate(read)
    assert read["cells"][1]["cell_type"] == cell_type and read["cells"][1]["source"] == "new ✓"
    assert read == YNotebook(other).get()
    # the shape JupyterLab expects: shared text and metadata, outputs for code
    cell = other.get("cells", type=Array)[1]
    assert isinstance(cell["source"], Text) and isinstance(cell["metadata"], Map)
    assert isinstance(cell["outputs"], Array) if cell_type == "code" else "outputs" not in cell


def test_insert_cell_at_either_end_and_refuses_outside() -> None:
    doc = loaded()
    first = insert_cell(doc, 0, "code", "first")
    last = insert_cell(doc, None, "markdown", "last")
    assert cell_ids(doc)[0] == first.cell_id and cell_ids(doc)[-1] == last.cell_id
    for index in (-1, len(cell_ids(doc)) + 1):
        with pytest.raises(BadEdit, match="outside"):
            insert_cell(doc, index, "code")
    with pytest.raises(BadEdit, match="cell_type"):
        insert_cell(doc, 0, "heading")
    with pytest.raises(BadEdit, match="cell id"):
        insert_cell(doc, 0, "code", cell_id="work")  # taken
    with pytest.raises(BadEdit, match="cell id"):
        insert_cell(doc, 0, "code", cell_id="no spaces")


def test_new_cell_ids_avoid_those_taken() -> None:
    ids = {new_cell_id() for _ in range(50)}
    assert len(ids) == 50 and all(CELL_ID.match(i) for i in ids)


def test_insert_into_an_empty_document() -> None:
    doc = Doc()
    other = Doc()
    other.apply_update(insert_cell(doc, 0, "code", "print(1)").update)
    assert [c["source"] for c in notebook_json(other)["cells"]] == ["print(1)"]


def test_delete_cell_reaches_another_replica() -> None:
    doc = loaded()
    other = replica(doc)
    other.apply_update(delete_cell(doc, "pic").update)
    assert cell_ids(other) == ["intro", "work", "raw"]


# -- telling whether the room kept an edit --------------------------------------------


def deletions_of(doc: Doc, update: bytes) -> list[bytes]:
    """Apply ``update`` to ``doc``; the delete sets of the transactions it caused."""
    seen: list[bytes] = []
    subscription = doc.observe(lambda event: seen.append(event.delete_set))
    doc.apply_update(update)
    doc.unobserve(subscription)
    return seen


def test_an_edit_whose_text_another_replica_deleted_is_undone() -> None:
    doc = loaded()
    change = append_source(doc, "raw", " appended")
    room = replica(doc)
    text = room.get("cells", type=Array)[3]["source"]
    before = room.get_state()
    del text[len(text) - len(" appended"):len(text)]  # what the guard's revert does
    revert = room.get_update(before)
    assert change.undone(deletions_of(doc, revert), doc)
    assert not change.undone([], doc)


def test_deleting_someone_elses_text_does_not_count_as_undoing_mine() -> None:
    doc = loaded()
    change = append_source(doc, "raw", " mine")
    room = replica(doc)
    text = room.get("cells", type=Array)[3]["source"]
    before = room.get_state()
    del text[0:3]  # older text, not the edit's
    assert not change.undone(deletions_of(doc, room.get_update(before)), doc)


def test_a_deleted_cell_put_back_means_undone() -> None:
    doc = loaded()
    change = delete_cell(doc, "pic")
    assert not change.undone([], doc)
    room = loaded()  # a replica that still has the cell, as after a revert
    doc.apply_update(room.get_update())
    assert "pic" in cell_ids(doc) and change.undone([], doc)


def test_a_pure_deletion_put_back_means_undone() -> None:
    doc = loaded()
    room = replica(doc)
    change = replace_source(doc, "intro", "# Lab 1\n")
    assert not change.undone([], doc)
    room.apply_update(change.update)
    text = room.get("cells", type=Array)[0]["source"]
    before = room.get_state()
    text.insert(len(text), "Read this first.")  # the revert re-inserts the deleted text
    doc.apply_update(room.get_update(before))
    assert change.undone([], doc)


def test_an_inserted_cell_that_is_gone_means_undone() -> None:
    doc = loaded()
    change = insert_cell(doc, 0, "code", "x")
    room = replica(doc)
    before = room.get_state()
    del room.get("cells", type=Array)[0]
    assert change.undone(deletions_of(doc, room.get_update(before)), doc)


def test_delete_sets_are_read_as_pycrdt_reads_them() -> None:
    from pycrdt import IdMap, IdSet

    from hub_rtc.documents.notebook import _deletes

    one, two = Doc(), Doc()
    one.get("t", type=Text).insert(0, "a" * 300)  # clocks past one varuint byte
    two.apply_update(one.get_update())
    two.get("t", type=Text).insert(0, "b" * 10)
    one.apply_update(two.get_update())
    text = one.get("t", type=Text)
    seen: list[bytes] = []
    subscription = one.observe(lambda event: seen.append(event.delete_set))
    with one.transaction():
        del text[0:3]      # two's items 0..2
        del text[150:160]  # one's items
        del text[200:290]
    one.unobserve(subscription)
    ranges = IdMap.from_set(IdSet.decode(seen[0]), []).entries()
    for client in (one.client_id, two.client_id):
        for start in range(0, 320, 7):
            expected = any(c == client and r.start < start + 7 and r.end > start for c, r in ranges)
            assert _deletes(seen[0], client, start, start + 7) == expected
    assert not _deletes(b"", one.client_id, 0, 10)


# -- a kept view of a notebook ----------------------------------------------------------


_STRUCTURE = ["insert", "delete", "move"]
_CONTENT = ["type", "type", "delete text", "output", "count", "cell meta", "notebook meta"]


def _random_change(doc: Doc, rng: random.Random, serial: list[int]) -> None:
    """One transaction of one to three changes of the kinds clients make."""
    cells = doc.get("cells", type=Array)
    with doc.transaction():
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(_STRUCTURE + _CONTENT)
            if not len(cells) or kind == "insert":
                serial[0] += 1
                cells.insert(rng.randint(0, len(cells)), Map({
                    "id": f"n{serial[0]}", "cell_type": "code", "source": Text(f"new {serial[0]}"),
                    "metadata": Map(), "outputs": Array(), "execution_count": None}))
                continue
            index = rng.randrange(len(cells))
            cell = cells[index]
            if kind == "type":
                cell["source"].insert(0, rng.choice(["a", "é", "😀 "]))
            elif kind == "delete text" and str(cell["source"]):
                # the first character whole: pycrdt's offsets count UTF-8 bytes
                del cell["source"][0:len(str(cell["source"])[0].encode())]
            elif kind == "delete":
                del cells[index]
            elif kind == "move":
                copy_of = _cell_copy(cell)
                del cells[index]
                cells.insert(rng.randint(0, len(cells)), copy_of)
            elif kind == "output" and "outputs" in cell:
                cell["outputs"].append(Map({"output_type": "stream", "name": "stdout",
                                            "text": f"{rng.random()}"}))
            elif kind == "count":
                cell["execution_count"] = float(rng.randint(1, 9))
            elif kind == "cell meta":
                cell["metadata"]["tags"] = [rng.choice(["a", "b"])]
            elif kind == "notebook meta":
                doc.get("meta", type=Map)["metadata"]["kernelspec"] = {"name": f"k{rng.random()}"}


def _cell_copy(cell: Map) -> Map:
    """A cell moved as JupyterLab moves one: a new map with the same source and id."""
    return Map({"id": cell.get("id"), "cell_type": cell.get("cell_type"),
                "source": Text(str(cell["source"])), "metadata": Map(), "outputs": Array(),
                "execution_count": None})


@pytest.mark.parametrize("seed", range(12))
def test_a_kept_view_reads_what_a_fresh_read_reads(seed: int) -> None:
    """After every change, whether made on the viewed replica or carried to it from
    another as update bytes, the kept view equals reading the notebook afresh."""
    rng = random.Random(seed)
    viewed = loaded()
    elsewhere = replica(viewed)
    view = NotebookView(viewed)
    serial = [0]
    for step in range(60):
        if rng.random() < 0.5:
            state = viewed.get_state()
            _random_change(elsewhere, rng, serial)
            viewed.apply_update(elsewhere.get_update(state))
        else:
            state = elsewhere.get_state()
            _random_change(viewed, rng, serial)
            elsewhere.apply_update(viewed.get_update(state))
        if step % 3:  # reads between some changes, not all: copies must survive several
            assert view.json() == notebook_json(viewed), f"seed {seed}, step {step}"
    assert view.json() == notebook_json(viewed)


def test_a_closed_view_stops_observing() -> None:
    doc = loaded()
    view = NotebookView(doc)
    view.json()
    view.close()
    replace_source(doc, "intro", "# changed")
    assert view.json()["cells"][0]["source"] != "# changed"  # its copies, no longer kept in step
