"""The CRDT guard, in the server's topology, in-process.

A *room* doc wrapped in jupyter_ydoc's YNotebook (so with its UndoManager, as on the
server), the guard following it, a *sender* client and an *other* client, all synced
from the room.  Each edit goes: sender edits -> its update -> ``guard.check`` -> the
room applies ``verdict.forward`` -> the room's updates go to both clients.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from jupyter_ydoc import YNotebook, YUnicode
from pycrdt import Array, Doc, Map, Text, merge_updates

import hub_rtc.guard._mirror as guard_mirror
from hub_rtc.guard import DocumentGuard, Rights, Touch, Verdict
from hub_rtc.guard.rights import RUN_PARTS

EDITOR = Rights(write=True, protected=frozenset({"locked"}))
VIEWER = Rights.read_only()
FULL = Rights.full()


def code(cell_id: str, source: str, **extra: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {"id": cell_id, "cell_type": "code", "source": source, "metadata": {},
                            "outputs": [], "execution_count": None}
    return {**cell, **extra}


NOTEBOOK = {
    "cells": [
        code("free", "x = 1\nprint(x)", execution_count=1,
             outputs=[{"output_type": "stream", "name": "stdout", "text": "1\n"}]),
        code("locked", "answer = 42  # é ✓", metadata={"tags": ["exam"]}, execution_count=3,
             outputs=[{"output_type": "stream", "name": "stdout", "text": "42\n"}]),
        {"id": "notes", "cell_type": "markdown", "source": "# Notes", "metadata": {}},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


# -- the topology ------------------------------------------------------------------


@dataclass
class Net:
    """The room, its guard, and two clients, wired as on the shared server."""

    room_doc: Doc
    guard: DocumentGuard
    sender: Doc = field(init=False)
    other: Doc = field(init=False)
    outbox: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.room_doc.observe(lambda event: self.guard.follow(event.update))
        self.room_doc.observe(lambda event: self.outbox.append(event.update))
        self.sender = self.client()
        self.other = self.client()

    def client(self) -> Doc:
        doc: Doc = Doc()
        doc.apply_update(self.room_doc.get_update())
        return doc

    def send(self, update: bytes, rights: Rights) -> Verdict:
        verdict = self.guard.check(update, rights)
        if verdict.forward is not None:
            self.room_doc.apply_update(verdict.forward)
        self.broadcast()
        return verdict

    def broadcast(self) -> None:
        for update in self.outbox:
            self.sender.apply_update(update)
            self.other.apply_update(update)
        self.outbox.clear()


def notebook_net(content: dict[str, Any] = NOTEBOOK) -> Net:
    room_doc: Doc = Doc()
    YNotebook(room_doc).set(content)
    return Net(room_doc, DocumentGuard(room_doc.get_update()))


def edit(doc: Doc, change: Callable[[Doc], None]) -> bytes:
    """What ``change`` makes ``doc`` send: its update(s), merged into one payload."""
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    change(doc)
    doc.unobserve(subscription)
    assert updates, "the edit changed nothing"
    return merge_updates(*updates)


def cells(doc: Doc) -> Array:
    return doc.get("cells", type=Array)


def cell(doc: Doc, cell_id: str) -> Map:
    return cells(doc)[ids(doc).index(cell_id)]


def ids(doc: Doc) -> list[str]:
    return [c["id"] for c in cells(doc)]


def content(doc: Doc) -> dict[str, Any]:
    return {"cells": cells(doc).to_py(), "meta": doc.get("meta", type=Map).to_py(),
            "state": doc.get("state", type=Map).to_py()}


def new_cell(cell_id: str, source: str) -> Map:
    return Map({"id": cell_id, "cell_type": "code", "source": Text(source), "metadata": Map(),
                "outputs": Array(), "execution_count": None, "execution_state": "idle"})


def copy_of(ycell: Map) -> Map:
    """A copy of a cell the way JupyterLab makes one to move it."""
    py: dict[str, Any] = ycell.to_py() or {}
    outputs = [Map({**o, "text": Text(o["text"])} if "text" in o else o) for o in py.get("outputs", [])]
    return Map({**py, "source": Text(py["source"]), "metadata": Map(py["metadata"]),
                **({"outputs": Array(outputs)} if "outputs" in py else {})})


def secrets(data: bytes) -> list[bytes]:
    return re.findall(rb"SECRET[-\w]*", data)


# -- the edits -----------------------------------------------------------------------


def move_to_end(doc: Doc, cell_id: str) -> None:
    with doc.transaction():
        index = ids(doc).index(cell_id)
        copy = copy_of(cells(doc)[index])
        del cells(doc)[index]
        cells(doc).append(copy)


def delete_head(text: Text, size: int) -> None:
    del text[0 : min(size, len(text))]


def delete_tail(text: Text, size: int) -> None:
    del text[max(0, len(text) - size) : len(text)]


def restructure_outputs(doc: Doc, cell_id: str, new_key: bool = False) -> None:
    with doc.transaction():
        outputs = cell(doc, cell_id)["outputs"]
        outputs.insert(0, Map({"output_type": "stream", "name": "stderr", "text": Text("SECRET-err")}))
        outputs[1]["text"].insert(0, "SECRET-edited")
        if new_key:
            outputs[1]["SECRET-output-key"] = "SECRET-output-value"


def insert_copy_with_id(doc: Doc, cell_id: str) -> None:
    cells(doc).insert(0, new_cell(cell_id, "SECRET-duplicate"))


CELL_EDITS: dict[str, tuple[Callable[[Doc, str], None], tuple[str, ...]]] = {
    # name: (edit of the cell with the given id, parts it touches)
    "text insert": (lambda d, c: cell(d, c)["source"].insert(2, "SECRET-text"), ("source",)),
    "text delete": (lambda d, c: delete_head(cell(d, c)["source"], 5), ("source",)),
    # pycrdt counts text in UTF-8 bytes: the last 6 bytes of the locked cell are "é ✓"
    "text delete at end": (lambda d, c: delete_tail(cell(d, c)["source"], 6), ("source",)),
    "text replaced": (lambda d, c: cell(d, c).__setitem__("source", Text("SECRET-new-text")), ("source",)),
    "cell delete": (lambda d, c: cells(d).__delitem__(ids(d).index(c)), ("delete",)),
    "cell move": (move_to_end, ("delete", "insert")),
    "cell metadata new key": (lambda d, c: cell(d, c)["metadata"].__setitem__("SECRET-key", "SECRET-m"),
                              ("metadata",)),
    "cell metadata changed": (lambda d, c: cell(d, c)["metadata"].__setitem__("tags", ["SECRET-tag"]),
                              ("metadata",)),
    "outputs appended": (lambda d, c: cell(d, c)["outputs"].append(
        Map({"output_type": "stream", "name": "stdout", "text": Text("SECRET-out")})), ("outputs",)),
    "outputs cleared": (lambda d, c: cell(d, c)["outputs"].clear(), ("outputs",)),
    "outputs restructured and edited": (restructure_outputs, ("outputs",)),
    "outputs restructured, key added": (lambda d, c: restructure_outputs(d, c, new_key=True), ("outputs",)),
    "execution_count": (lambda d, c: cell(d, c).__setitem__("execution_count", 99), ("execution_count",)),
    "cell_type": (lambda d, c: cell(d, c).__setitem__("cell_type", "markdown"), ("cell_type",)),
    "new cell key": (lambda d, c: cell(d, c).__setitem__("SECRET-ckey", "SECRET-cv"), ("SECRET-ckey",)),
    "cell key deleted": (lambda d, c: cell(d, c).__delitem__("execution_count"), ("execution_count",)),
}

OUTPUT_TEXT_EDIT = (lambda d, c: cell(d, c)["outputs"][0]["text"].insert(0, "SECRET-stream"), ("outputs",))


def touches(cell_id: str, parts: tuple[str, ...]) -> set[Touch]:
    return {Touch(cell_id, part) for part in parts}


# -- allowed edits arrive unchanged ------------------------------------------------------


def assert_accepted(net: Net, update: bytes, verdict: Verdict, touched: set[Touch]) -> None:
    assert verdict.accepted and not verdict.pending and not verdict.refused
    assert verdict.forward == update
    assert set(verdict.touched) == touched
    assert content(net.other) == content(net.sender) == content(net.room_doc)
    assert content(net.guard.doc) == content(net.room_doc)


@pytest.mark.parametrize("name", sorted(CELL_EDITS))
def test_editor_edits_a_free_cell(name: str) -> None:
    net = notebook_net()
    change, parts = CELL_EDITS[name]
    update = edit(net.sender, lambda d: change(d, "free"))
    assert_accepted(net, update, net.send(update, EDITOR), touches("free", parts))


@pytest.mark.parametrize("name", sorted(CELL_EDITS))
def test_full_rights_edit_a_locked_cell(name: str) -> None:
    net = notebook_net()
    change, parts = CELL_EDITS[name]
    update = edit(net.sender, lambda d: change(d, "locked"))
    assert_accepted(net, update, net.send(update, FULL), touches("locked", parts))


def test_editor_inserts_a_new_cell() -> None:
    net = notebook_net()
    update = edit(net.sender, lambda d: cells(d).insert(1, new_cell("fresh", "y = 2")))
    assert_accepted(net, update, net.send(update, EDITOR), {Touch("fresh", "insert")})
    assert ids(net.other) == ["free", "fresh", "locked", "notes"]


def test_editor_renames_a_free_cell_touching_both_ids() -> None:
    net = notebook_net()
    update = edit(net.sender, lambda d: cell(d, "free").__setitem__("id", "renamed"))
    assert_accepted(net, update, net.send(update, EDITOR), {Touch("free", "id"), Touch("renamed", "id")})


NON_CELL_EDITS: dict[str, tuple[Callable[[Doc], None], Touch]] = {
    "notebook metadata": (lambda d: d.get("meta", type=Map)["metadata"].__setitem__("SECRET-nk", "SECRET-nb"),
                          Touch(None, "notebook")),
    "notebook format": (lambda d: d.get("meta", type=Map).__setitem__("nbformat_minor", 99),
                        Touch(None, "notebook")),
    "state": (lambda d: d.get("state", type=Map).__setitem__("dirty", "SECRET-state"), Touch(None, "state")),
    "another root": (lambda d: d.get("notes", type=Text).insert(0, "SECRET-root"), Touch(None, "document")),
}


@pytest.mark.parametrize("name", sorted(NON_CELL_EDITS))
def test_editor_edits_outside_the_cells(name: str) -> None:
    net = notebook_net()
    change, touch = NON_CELL_EDITS[name]
    update = edit(net.sender, change)
    assert_accepted(net, update, net.send(update, EDITOR), {touch})


# -- refused edits: every replica converges on the authorized state, nothing leaks ------


def assert_reverted(net: Net, verdict: Verdict, before: dict[str, Any], refused: set[Touch]) -> None:
    assert not verdict.accepted and not verdict.pending
    assert verdict.forward is not None
    assert set(verdict.refused) == refused
    assert verdict.touched == ()
    assert content(net.sender) == content(net.other) == content(net.room_doc) == before
    assert_no_secret(net, verdict)


def assert_no_secret(net: Net, verdict: Verdict) -> None:
    fresh = net.client()
    assert secrets(verdict.forward or b"") == []
    assert secrets(net.room_doc.get_update()) == []
    assert secrets(fresh.get_update()) == []
    assert "SECRET" not in repr(content(fresh))
    assert secrets(net.guard.state()) == []


def refuse(net: Net, change: Callable[[Doc], None], rights: Rights, refused: set[Touch]) -> Verdict:
    before = content(net.room_doc)
    verdict = net.send(edit(net.sender, change), rights)
    assert_reverted(net, verdict, before, refused)
    return verdict


@pytest.mark.parametrize("rights", [EDITOR, VIEWER], ids=["editor", "viewer"])
@pytest.mark.parametrize("name", sorted(CELL_EDITS))
def test_refused_cell_edit(name: str, rights: Rights) -> None:
    net = notebook_net()
    change, parts = CELL_EDITS[name]
    refuse(net, lambda d: change(d, "locked"), rights, touches("locked", parts))
    assert ids(net.room_doc).index("locked") == 1


def test_refused_output_text_edit() -> None:
    net = notebook_net()
    change, parts = OUTPUT_TEXT_EDIT
    refuse(net, lambda d: change(d, "locked"), EDITOR, touches("locked", parts))


@pytest.mark.parametrize("name", sorted(CELL_EDITS))
def test_viewer_edits_a_free_cell(name: str) -> None:
    net = notebook_net()
    change, parts = CELL_EDITS[name]
    refuse(net, lambda d: change(d, "free"), VIEWER, touches("free", parts))


@pytest.mark.parametrize("name", sorted(NON_CELL_EDITS))
def test_viewer_edits_outside_the_cells(name: str) -> None:
    net = notebook_net()
    change, touch = NON_CELL_EDITS[name]
    refuse(net, change, VIEWER, {touch})


RUNNER = Rights(write=False, protected=frozenset({"locked"}), run=True)
# every edit that touches only what running a cell changes
RUN_EDITS = {name for name, (_, parts) in CELL_EDITS.items() if set(parts) <= RUN_PARTS}


@pytest.mark.parametrize("name", sorted(RUN_EDITS))
def test_runner_writes_the_results_of_running_a_free_cell(name: str) -> None:
    net = notebook_net()
    change, parts = CELL_EDITS[name]
    update = edit(net.sender, lambda d: change(d, "free"))
    assert_accepted(net, update, net.send(update, RUNNER), touches("free", parts))


@pytest.mark.parametrize("name", sorted(RUN_EDITS))
def test_runner_may_not_write_results_into_a_locked_cell(name: str) -> None:
    change, parts = CELL_EDITS[name]
    refuse(notebook_net(), lambda d: change(d, "locked"), RUNNER, touches("locked", parts))


@pytest.mark.parametrize("name", sorted(set(CELL_EDITS) - RUN_EDITS))
def test_runner_may_not_edit_a_free_cell(name: str) -> None:
    change, parts = CELL_EDITS[name]
    refuse(notebook_net(), lambda d: change(d, "free"), RUNNER, touches("free", parts))


def test_viewer_inserts_a_cell() -> None:
    net = notebook_net()
    refuse(net, lambda d: cells(d).insert(0, new_cell("mine", "SECRET-insert")), VIEWER,
           {Touch("mine", "insert")})


@pytest.mark.parametrize("rights", [EDITOR, VIEWER], ids=["editor", "viewer"])
def test_inserting_a_cell_with_a_protected_id(rights: Rights) -> None:
    net = notebook_net()
    refuse(net, lambda d: insert_copy_with_id(d, "locked"), rights, {Touch("locked", "insert")})


def test_editor_may_not_take_a_protected_id() -> None:
    net = notebook_net()
    refuse(net, lambda d: cell(d, "free").__setitem__("id", "locked"), EDITOR,
           {Touch("free", "id"), Touch("locked", "id")})


def test_editor_may_not_rename_a_protected_cell() -> None:
    net = notebook_net()
    refuse(net, lambda d: cell(d, "locked").__setitem__("id", "SECRET-id"), EDITOR,
           {Touch("locked", "id"), Touch("SECRET-id", "id")})


# -- mixed, offline and concurrent updates ----------------------------------------------


def test_one_update_touching_allowed_and_protected_cells() -> None:
    net = notebook_net()
    before = content(net.room_doc)

    def both(doc: Doc) -> None:
        with doc.transaction():
            cell(doc, "free")["source"].insert(0, "# mine\n")
            cell(doc, "locked")["source"].insert(0, "SECRET-mixed")
            cells(doc).append(new_cell("added", "z = 3"))

    verdict = net.send(edit(net.sender, both), EDITOR)
    assert not verdict.accepted
    assert set(verdict.touched) == {Touch("free", "source"), Touch("added", "insert")}
    assert set(verdict.refused) == {Touch("locked", "source")}
    assert content(net.sender) == content(net.other) == content(net.room_doc)
    assert cell(net.other, "free")["source"].to_py() == "# mine\nx = 1\nprint(x)"
    assert ids(net.other) == ["free", "locked", "notes", "added"]
    assert cell(net.other, "locked").to_py() == before["cells"][1]
    assert_no_secret(net, verdict)


def test_offline_client_step2_with_several_edits() -> None:
    net = notebook_net()
    before = content(net.room_doc)
    offline = net.client()
    # While the client is offline, others keep working in the room.
    net.send(edit(net.other, lambda d: cell(d, "notes")["source"].insert(7, " (shared)")), EDITOR)
    cell(offline, "free")["source"].insert(0, "# offline\n")
    cell(offline, "locked")["source"].insert(0, "SECRET-offline")
    del cell(offline, "locked")["source"][0:3]
    cells(offline).insert(0, new_cell("draft", "w = 4"))
    cell(offline, "locked")["metadata"]["SECRET-offline-key"] = True
    # Reconnecting: it answers the room's step 1 with everything the room lacks.
    step2 = offline.get_update(net.room_doc.get_state())
    verdict = net.send(step2, EDITOR)
    offline.apply_update(net.room_doc.get_update(offline.get_state()))
    assert not verdict.accepted
    assert set(verdict.touched) == {Touch("free", "source"), Touch("draft", "insert")}
    assert set(verdict.refused) == {Touch("locked", "source"), Touch("locked", "metadata")}
    assert content(offline) == content(net.other) == content(net.room_doc)
    assert ids(net.room_doc) == ["draft", "free", "locked", "notes"]
    assert cell(net.room_doc, "locked").to_py() == before["cells"][1]
    assert cell(net.room_doc, "notes")["source"].to_py() == "# Notes (shared)"
    assert_no_secret(net, verdict)


def test_revert_keeps_a_concurrent_allowed_edit_in_the_same_text() -> None:
    net = notebook_net()
    stale = net.client()
    net.send(edit(net.other, lambda d: cell(d, "locked")["source"].insert(0, "# owner\n")), FULL)
    # An editor who has not seen the owner's line yet deletes the start of the cell.
    verdict = net.send(edit(stale, lambda d: cell(d, "locked")["source"].__delitem__(slice(0, 6))), EDITOR)
    stale.apply_update(net.room_doc.get_update(stale.get_state()))
    assert verdict.refused == (Touch("locked", "source"),)
    expected = "# owner\nanswer = 42  # é ✓"
    assert cell(net.room_doc, "locked")["source"].to_py() == expected
    assert content(stale) == content(net.other) == content(net.room_doc)


def test_refused_edit_in_a_cell_the_owner_just_moved() -> None:
    net = notebook_net()
    stale = net.client()
    net.send(edit(net.other, lambda d: move_to_end(d, "locked")), FULL)
    verdict = net.send(edit(stale, lambda d: cell(d, "locked")["metadata"].__setitem__("k", 1)), EDITOR)
    stale.apply_update(net.room_doc.get_update(stale.get_state()))
    assert verdict.forward is not None
    assert ids(net.room_doc) == ["free", "notes", "locked"]
    assert content(stale) == content(net.other) == content(net.room_doc)
    assert cell(net.room_doc, "locked")["metadata"].to_py() == {"tags": ["exam"]}


def test_allowed_and_refused_deletes_in_one_update() -> None:
    net = notebook_net()
    before = content(net.room_doc)

    def delete_all(doc: Doc) -> None:
        with doc.transaction():
            del cells(doc)[0:3]
            cells(doc).append(new_cell("only", "SECRET-not-this"))
            cells(doc).insert(0, new_cell("locked", "SECRET-nor-this"))

    verdict = net.send(edit(net.sender, delete_all), EDITOR)
    assert set(verdict.touched) == {Touch("free", "delete"), Touch("notes", "delete"),
                                    Touch("only", "insert")}
    assert set(verdict.refused) == {Touch("locked", "delete"), Touch("locked", "insert")}
    assert ids(net.room_doc) == ["locked", "only"]
    assert cell(net.room_doc, "locked").to_py() == before["cells"][1]
    assert content(net.sender) == content(net.other) == content(net.room_doc)
    assert secrets(net.room_doc.get_update()) == [b"SECRET-not-this"]  # the allowed new cell


def test_cells_without_unique_ids() -> None:
    """Cells without an id, or sharing one, are copied by position, not by id."""
    room_doc: Doc = Doc()
    YNotebook(room_doc).set(NOTEBOOK)
    with room_doc.transaction():
        cells(room_doc).append(new_cell("twin", "first twin"))
        cells(room_doc).append(new_cell("twin", "second twin"))
        anonymous = new_cell("", "no id")
        cells(room_doc).append(anonymous)
        del cells(room_doc)[len(cells(room_doc)) - 1]["id"]
    net = Net(room_doc, DocumentGuard(room_doc.get_update()))
    before = content(net.room_doc)
    twins = Rights(write=True, protected=frozenset({"twin"}))

    def edit_both(doc: Doc) -> None:
        with doc.transaction():
            cells(doc)[4]["source"].insert(0, "SECRET-twin")
            del cells(doc)[3]

    refuse(net, edit_both, twins, {Touch("twin", "source"), Touch("twin", "delete")})
    refuse(net, lambda d: cells(d)[5]["source"].insert(0, "SECRET-anon"), VIEWER, {Touch(None, "source")})
    assert content(net.room_doc) == before


def test_several_edits_of_one_cell_give_one_touch() -> None:
    net = notebook_net()

    def typing(doc: Doc) -> None:
        with doc.transaction():
            for char in "abc":
                cell(doc, "free")["source"].insert(0, char)
            cell(doc, "free")["metadata"]["a"] = 1
            cell(doc, "free")["metadata"]["b"] = 2

    verdict = net.send(edit(net.sender, typing), EDITOR)
    assert sorted(verdict.touched, key=str) == [Touch("free", "metadata"), Touch("free", "source")]


def test_a_refused_update_does_not_block_later_updates_built_on_it() -> None:
    net = notebook_net()
    first = edit(net.sender, lambda d: cell(d, "locked")["source"].insert(0, "SECRET-first"))
    # The sender keeps typing before it hears back: its next update builds on the first.
    second = edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "later "))
    assert net.send(first, EDITOR).refused
    verdict = net.send(second, EDITOR)
    assert verdict.accepted and not verdict.pending
    assert cell(net.other, "free")["source"].to_py().startswith("later ")
    assert content(net.sender) == content(net.other) == content(net.room_doc)


# -- why the forward must already be garbage-collected ---------------------------------


def test_the_rooms_undo_manager_would_keep_a_naive_revert() -> None:
    """Applying the client's update and reverting it on the room itself leaves the
    rejected text in the room's encoded doc: YNotebook's UndoManager keeps it alive."""
    net = notebook_net()
    update = edit(net.sender, lambda d: cell(d, "locked")["source"].insert(0, "SECRET-naive"))
    room: Doc = Doc()
    notebook = YNotebook(room)
    room.apply_update(net.room_doc.get_update())
    room.apply_update(update)
    source = notebook.ycells[1]["source"]
    del source[0 : len("SECRET-naive")]
    assert secrets(room.get_update()) != []
    # The guard's forward carries the same update already reverted and collected.
    verdict = net.send(update, EDITOR)
    assert_no_secret(net, verdict)


def test_root_map_keys_leave_no_name_for_a_reader() -> None:
    """Yjs keeps the key of a deleted entry, and a root map cannot be replaced; a
    reader's items never reach the mirror (bare clock ranges), so not even a refused
    new key's name reaches the room."""
    net = notebook_net()
    before = content(net.room_doc)
    verdict = net.send(edit(net.sender, lambda d: d.get("meta", type=Map).__setitem__("NAME", "SECRET-v")),
                       VIEWER)
    assert content(net.room_doc) == content(net.sender) == before
    assert secrets(net.room_doc.get_update()) == []
    assert b"NAME" not in net.room_doc.get_update() and b"NAME" not in net.guard.state()
    assert verdict.refused == (Touch(None, "notebook"),)


@pytest.mark.parametrize("root", ["meta", "state", "a new root"])
def test_root_map_keys_leave_no_name_for_a_runner(root: str) -> None:
    """A runner may write outputs, so their updates reach the mirror; but nothing they
    send outside the cells is theirs to write, so it reaches it as bare deleted items
    and clock ranges: not even a refused new key's or root's name stays."""
    net = notebook_net()
    before = content(net.room_doc)
    name = "SECRET-root" if root == "a new root" else root

    def add(doc: Doc) -> None:
        doc.get(name, type=Map)["NAME"] = Map({"deep": Text("SECRET-v")})

    verdict = net.send(edit(net.sender, add), RUNNER)
    assert content(net.room_doc) == content(net.sender) == before
    for data in (net.room_doc.get_update(), net.guard.state(), verdict.forward or b""):
        assert secrets(data) == [] and b"NAME" not in data
    assert not verdict.accepted


def test_a_runners_output_goes_through_beside_a_refused_root_key() -> None:
    net = notebook_net()

    def both(doc: Doc) -> None:
        cell(doc, "free")["execution_count"] = 7
        doc.get("meta", type=Map)["NAME"] = "SECRET-v"

    verdict = net.send(edit(net.sender, both), RUNNER)
    assert not verdict.accepted and verdict.refused  # counted as a refusal
    assert cell(net.room_doc, "free")["execution_count"] == 7
    assert cell(net.sender, "free")["execution_count"] == 7
    assert b"NAME" not in net.room_doc.get_update() and secrets(net.room_doc.get_update()) == []
    assert content(net.room_doc) == content(net.sender)


# -- plain text files ---------------------------------------------------------------


def text_net(text: str = "hello world", *, loaded_later: bool = False) -> Net:
    room_doc: Doc = Doc()
    document = YUnicode(room_doc)
    if not loaded_later:
        document.set(text)
    net = Net(room_doc, DocumentGuard(room_doc.get_update()))
    if loaded_later:
        document.set(text)
        net.broadcast()
    return net


def source(doc: Doc) -> str:
    return str(doc.get("source", type=Text))


@pytest.mark.parametrize("loaded_later", [False, True])
def test_text_file_viewer_is_reverted(loaded_later: bool) -> None:
    net = text_net(loaded_later=loaded_later)
    verdict = net.send(edit(net.sender, lambda d: d.get("source", type=Text).insert(5, " SECRET-file")),
                       VIEWER)
    assert verdict.refused == (Touch(None, "document"),)
    assert source(net.sender) == source(net.other) == source(net.room_doc) == "hello world"
    assert_no_secret(net, verdict)
    deleted = net.send(edit(net.sender, lambda d: d.get("source", type=Text).__delitem__(slice(0, 6))),
                       VIEWER)
    assert deleted.refused and source(net.sender) == source(net.room_doc) == "hello world"


@pytest.mark.parametrize("loaded_later", [False, True])
def test_text_file_editor_is_attributed(loaded_later: bool) -> None:
    net = text_net(loaded_later=loaded_later)
    update = edit(net.sender, lambda d: d.get("source", type=Text).insert(5, ","))
    verdict = net.send(update, EDITOR)
    assert verdict.accepted and verdict.forward == update
    assert verdict.touched == (Touch(None, "document"),)
    assert source(net.other) == source(net.room_doc) == "hello, world"


def test_root_types_can_be_named() -> None:
    room_doc: Doc = Doc()
    YUnicode(room_doc).set("abc")
    net = Net(room_doc, DocumentGuard(room_doc.get_update(), roots={"source": Text}))
    verdict = net.send(edit(net.sender, lambda d: d.get("source", type=Text).insert(0, "SECRET-x")), VIEWER)
    assert verdict.refused == (Touch(None, "document"),) and source(net.room_doc) == "abc"


# -- pending, malformed and echoed updates -------------------------------------------


def test_out_of_order_update_is_pending_and_never_leaks_later() -> None:
    net = notebook_net()
    first = edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "a"))
    second = edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "SECRET-pending"))
    verdict = net.send(second, EDITOR)
    assert verdict == Verdict(accepted=False, forward=None, pending=True)
    assert net.guard.stale
    assert net.guard.check(first, EDITOR).pending  # stale until reset
    net.guard.reset(net.room_doc.get_update())
    assert not net.guard.stale
    verdict = net.send(first, EDITOR)
    assert verdict.accepted
    assert secrets(net.guard.state()) == [] and secrets(net.room_doc.get_update()) == []
    assert cell(net.guard.doc, "free")["source"].to_py() == "ax = 1\nprint(x)"


def test_pending_deletion_is_detected() -> None:
    net = notebook_net()
    typed = edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "abc"))
    # Only a delete set, naming items the room has never seen.
    erased = edit(net.sender, lambda d: cell(d, "free")["source"].__delitem__(slice(0, 3)))
    assert net.send(erased, EDITOR).pending
    net.guard.reset(net.room_doc.get_update())
    assert net.send(typed, EDITOR).accepted
    assert net.send(erased, EDITOR).accepted
    assert content(net.other) == content(net.sender) == content(net.room_doc)


def test_malformed_update_forwards_nothing() -> None:
    net = notebook_net()
    verdict = net.guard.check(b"\x05garbage", EDITOR)
    assert verdict.pending and verdict.forward is None
    assert not net.guard.stale  # nothing of it reached the mirror


@pytest.mark.parametrize("update", [b"\x00\x00", None], ids=["empty", "known"])
def test_update_changing_nothing_is_accepted(update: bytes | None) -> None:
    net = notebook_net()
    payload = update if update is not None else net.room_doc.get_update()
    verdict = net.send(payload, VIEWER)
    assert verdict == Verdict(accepted=True, forward=payload)


def test_following_the_echo_changes_nothing() -> None:
    net = notebook_net()
    verdict = net.guard.check(edit(net.sender, lambda d: cell(d, "locked")["source"].insert(0, "x")), EDITOR)
    state = net.guard.state()
    assert verdict.forward is not None
    net.guard.follow(verdict.forward)
    net.guard.follow(verdict.forward)
    assert net.guard.state() == state and not net.guard.stale


# -- costs ---------------------------------------------------------------------------


def test_full_rights_never_copy_content(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(value: object) -> Any:
        raise AssertionError("Rights.full() took a snapshot")

    monkeypatch.setattr(guard_mirror, "take", forbidden)
    for name, (change, _) in sorted(CELL_EDITS.items()):
        net = notebook_net()
        verdict = net.send(edit(net.sender, lambda d, c=change: c(d, "locked")), FULL)  # type: ignore[misc]
        assert verdict.accepted, name


def test_typing_in_free_cells_does_not_copy_protected_cells_again(monkeypatch: pytest.MonkeyPatch) -> None:
    copies: list[object] = []
    real_take = guard_mirror.take

    def counting(value: object) -> Any:
        copies.append(value)
        return real_take(value)

    monkeypatch.setattr(guard_mirror, "take", counting)
    net = notebook_net()
    for char in "typing":
        net.send(edit(net.sender, lambda d, c=char: cell(d, "free")["source"].insert(0, c)),  # type: ignore[misc]
                 EDITOR)
    assert len(copies) == 1  # the locked cell, once
    net.send(edit(net.other, lambda d: cell(d, "locked")["source"].insert(0, "#")), FULL)
    net.send(edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "!")), EDITOR)
    assert len(copies) == 2  # copied again only after it changed


def test_viewer_offline_update_with_every_kind_of_edit() -> None:
    net = notebook_net()
    before = content(net.room_doc)
    offline = net.client()
    for name in ["text insert", "text delete at end", "cell metadata new key", "cell metadata changed",
                 "outputs appended", "execution_count", "cell_type", "new cell key"]:
        for cell_id in ("free", "locked"):
            CELL_EDITS[name][0](offline, cell_id)
    for change, _ in NON_CELL_EDITS.values():
        change(offline)
    cells(offline).insert(0, new_cell("mine", "SECRET-mine"))
    move_to_end(offline, "free")
    del cells(offline)[ids(offline).index("notes")]
    verdict = net.send(offline.get_update(net.room_doc.get_state()), VIEWER)
    offline.apply_update(net.room_doc.get_update(offline.get_state()))
    assert verdict.touched == ()
    assert set(verdict.refused) == {
        *touches("locked", ("source", "metadata", "outputs", "execution_count", "cell_type", "SECRET-ckey")),
        Touch("mine", "insert"), Touch("free", "delete"), Touch("free", "insert"), Touch("notes", "delete"),
        Touch(None, "notebook"), Touch(None, "state"), Touch(None, "document"),
    }  # the free cell's own edits travel inside its moved copy: one insert
    assert content(offline) == content(net.other) == content(net.room_doc) == before
    assert_no_secret(net, verdict)


# -- random interleavings --------------------------------------------------------------

RANDOM_EDITS = [*CELL_EDITS.values(), OUTPUT_TEXT_EDIT,
                (insert_copy_with_id, ()), (lambda d, c: cell(d, c).__setitem__("id", "locked"), ())]


@pytest.mark.parametrize("rights", [EDITOR, VIEWER], ids=["editors", "viewers"])
@pytest.mark.parametrize("seed", range(10))
def test_random_interleavings(seed: int, rights: Rights) -> None:
    """Two clients edit at random, each seeing the room's updates late: whatever they
    do, every replica converges, the locked cell stays as it was, and viewers change
    nothing at all."""
    rng = random.Random(seed)
    net = notebook_net()
    before = content(net.room_doc)
    locked = cell(net.room_doc, "locked").to_py()
    clients = {"sender": net.client(), "other": net.client()}
    inboxes: dict[str, list[bytes]] = {name: [] for name in clients}

    def deliver_later(event: Any) -> None:
        for inbox in inboxes.values():
            inbox.append(event.update)

    net.room_doc.observe(deliver_later)
    for _ in range(40):
        name = rng.choice(sorted(clients))
        doc = clients[name]
        if inboxes[name] and rng.random() < 0.4:
            doc.apply_update(inboxes[name].pop(0))
            continue
        change, _ = rng.choice(RANDOM_EDITS)
        target = rng.choice(ids(doc) or ["none"])
        updates: list[bytes] = []
        subscription = doc.observe(lambda event, out=updates: out.append(event.update))  # type: ignore[misc]
        try:
            change(doc, target)
        except (IndexError, KeyError, ValueError, RuntimeError):
            pass  # that edit does not fit this cell (no outputs, say); send what it did
        doc.unobserve(subscription)
        for update in updates:
            verdict = net.guard.check(update, rights)
            assert not verdict.pending
            net.room_doc.apply_update(verdict.forward or b"")
    for name, doc in clients.items():
        for update in inboxes[name]:
            doc.apply_update(update)
    assert content(clients["sender"]) == content(clients["other"]) == content(net.room_doc)
    assert content(net.guard.doc) == content(net.room_doc)
    assert cell(net.room_doc, "locked").to_py() == locked
    assert ids(net.room_doc).count("locked") == 1
    if not rights.write:
        assert content(net.room_doc) == before
        assert secrets(net.room_doc.get_update()) == secrets(net.guard.state()) == []
