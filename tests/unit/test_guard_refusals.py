"""What the guard refuses beyond plain edits: cell identity as the saved file will say
it, and content that no revert through the pycrdt API can remove (formatting, embeds).

Uses the topology of test_guard: a room doc, its guard, a sender and another client.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text

from hub_rtc.guard import Rights, Touch
from tests.unit.test_guard import (
    EDITOR,
    FULL,
    RUNNER,
    VIEWER,
    Net,
    cell,
    cells,
    content,
    edit,
    ids,
    new_cell,
    notebook_net,
)

TEXT_ID = "text id"


def cell_with_id(cell_id: object, source: str = "SECRET-cell") -> Map:
    return Map({"id": cell_id, "cell_type": "code", "source": Text(source), "metadata": Map(),
                "outputs": Array(), "execution_count": None})


def saved_ids(doc: Doc) -> list[str]:
    """The ids the save path would write (YNotebook.get() on a copy of ``doc``)."""
    copy: Doc = Doc()
    copy.apply_update(doc.get_update())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c.get("id") for c in YNotebook(copy).get()["cells"]]


def test_the_save_path_renames_a_locked_cell_after_a_text_id() -> None:
    """Why: a Text id saves as its string, and the second of two equal ids is renamed."""
    doc: Doc = Doc()
    nb = YNotebook(doc)
    nb.set({"cells": [{"id": "locked", "cell_type": "code", "source": "real", "metadata": {},
                       "outputs": [], "execution_count": None}], "metadata": {},
            "nbformat": 4, "nbformat_minor": 5})
    cells(doc).insert(0, cell_with_id(Text("locked"), "fake"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = nb.get()["cells"]
    assert [(c["id"], c["source"]) for c in saved][0] == ("locked", "fake")
    assert saved[1]["id"] != "locked" and cells(doc)[1]["id"] != "locked"  # renamed in the doc too


def refused_identity(net: Net, change: Callable[[Doc], None], rights: Rights) -> None:
    before = content(net.room_doc)
    expected_ids = saved_ids(net.room_doc)
    verdict = net.send(edit(net.sender, change), rights)
    assert not verdict.accepted and verdict.forward is not None and not verdict.pending
    assert content(net.sender) == content(net.other) == content(net.room_doc) == before
    assert saved_ids(net.room_doc) == expected_ids
    assert b"SECRET" not in net.room_doc.get_update()


IDENTITY_ATTACKS: dict[str, Callable[[Doc], None]] = {
    "insert with a Text id equal to the locked id": lambda d: cells(d).insert(
        0, cell_with_id(Text("locked"))),
    "insert with a Text id": lambda d: cells(d).insert(0, cell_with_id(Text("fresh"))),
    "insert with a number id": lambda d: cells(d).insert(0, cell_with_id(7)),
    "insert without an id": lambda d: cells(d).insert(
        0, Map({"cell_type": "code", "source": Text("SECRET")})),
    "insert with a free cell's id": lambda d: cells(d).insert(0, cell_with_id("free")),
    "insert of something not a cell": lambda d: cells(d).insert(0, "SECRET-not-a-cell"),
    "rename to a Text id": lambda d: cell(d, "free").__setitem__("id", Text("locked")),
    "rename to another cell's id": lambda d: cell(d, "free").__setitem__("id", "notes"),
    "id deleted": lambda d: cell(d, "free").__delitem__("id"),
    "Text id edited into the locked id": lambda d: edit_text_id(d),
}


def edit_text_id(doc: Doc) -> None:
    """A free cell whose id the owner made a Text "lockex", edited into "locked"."""
    ident = cells(doc)[0]["id"]
    assert isinstance(ident, Text)
    del ident[5:6]
    ident.insert(5, "d")


@pytest.mark.parametrize("name", sorted(IDENTITY_ATTACKS))
def test_an_editor_may_not_give_a_cell_an_unsound_id(name: str) -> None:
    net = notebook_net()
    if name == "Text id edited into the locked id":
        owner_edit = edit(net.sender, lambda d: cells(d).insert(0, cell_with_id(Text("lockex"), "mine")))
        assert net.send(owner_edit, FULL).accepted
    refused_identity(net, IDENTITY_ATTACKS[name], EDITOR)


def test_a_cell_with_a_text_id_equal_to_a_locked_id_is_protected_too() -> None:
    """The owner may make one; what the save path would call "locked" stays locked."""
    net = notebook_net()
    owner_edit = edit(net.sender, lambda d: cells(d).insert(0, cell_with_id(Text("locked"), "owner's")))
    assert net.send(owner_edit, FULL).accepted
    before = content(net.room_doc)
    verdict = net.send(edit(net.sender, lambda d: cells(d)[0].__setitem__("execution_count", 5)), EDITOR)
    assert verdict.refused == (Touch("locked", "execution_count"),)
    assert content(net.room_doc) == content(net.sender) == before


def test_the_refused_text_id_insert_is_attributed() -> None:
    net = notebook_net()
    verdict = net.send(edit(net.sender, IDENTITY_ATTACKS["insert with a Text id equal to the locked id"]),
                       EDITOR)
    assert verdict.refused == (Touch("locked", "insert"),)  # the id the saved file would say


def test_sound_ids_stay_allowed() -> None:
    net = notebook_net()
    assert net.send(edit(net.sender, lambda d: cells(d).insert(0, new_cell("fresh", "y"))), EDITOR).accepted
    renamed = edit(net.sender, lambda d: cell(d, "fresh").__setitem__("id", "fresher"))
    assert net.send(renamed, EDITOR).accepted
    # a move is a delete and an insert of a copy with the same id: unique afterwards
    def move(doc: Doc) -> None:
        with doc.transaction():
            copy = cell(doc, "free").to_py()
            del cells(doc)[ids(doc).index("free")]
            cells(doc).append(Map({**copy, "source": Text(copy["source"]), "metadata": Map(),
                                   "outputs": Array()}))
    assert net.send(edit(net.sender, move), EDITOR).accepted
    assert ids(net.room_doc) == ["fresher", "locked", "notes", "free"]


def test_the_owner_keeps_every_freedom() -> None:
    net = notebook_net()
    verdict = net.send(edit(net.sender, lambda d: cells(d).insert(0, cell_with_id(Text("mine"), "o"))), FULL)
    assert verdict.accepted


@pytest.mark.parametrize("minor", [4, None], ids=["4.4", "deleted"])
def test_an_editor_may_not_make_the_save_drop_ids(minor: int | None) -> None:
    net = notebook_net()

    def lower(doc: Doc) -> None:
        meta = doc.get("meta", type=Map)
        if minor is None:
            del meta["nbformat_minor"]
        else:
            meta["nbformat_minor"] = minor

    before = content(net.room_doc)
    verdict = net.send(edit(net.sender, lower), EDITOR)
    assert verdict.refused == (Touch(None, "notebook"),)
    assert content(net.room_doc) == content(net.sender) == before
    assert saved_ids(net.room_doc) == ["free", "locked", "notes"]


# -- formatting, embeds, nested types: nothing of a refused update remains ----------------

MARK = "Zq9"
BIG = 200_000

CONTENT_ATTACKS: dict[str, Callable[[Text], None]] = {
    "format": lambda t: t.format(0, 3, {f"{MARK}-attr": f"{MARK}-value"}),
    "insert with attributes": lambda t: t.insert(1, f"{MARK}-text", {f"{MARK}-attr": f"{MARK}-value"}),
    "embed of 200 kB": lambda t: t.insert_embed(1, {f"{MARK}-attr": f"{MARK}-" + "v" * BIG}),
    "embed of a string": lambda t: t.insert_embed(1, f"{MARK}-" + "v" * 50),
    "embed of a map": lambda t: t.insert_embed(1, Map({f"{MARK}-attr": Text(f"{MARK}-value")})),
    "format then delete": lambda t: (t.format(0, 3, {f"{MARK}-attr": 1}), t.__delitem__(slice(0, 3))),
}


def nowhere(net: Net, forward: bytes | None) -> None:
    fresh = net.client()
    for place, data in {"forward": forward or b"", "mirror": net.guard.state(),
                        "room": net.room_doc.get_update(), "fresh replica": fresh.get_update()}.items():
        assert MARK.encode() not in data, f"refused content in the {place}"


@pytest.mark.parametrize("attack", sorted(CONTENT_ATTACKS))
def test_a_viewers_formatting_and_embeds_leave_nothing(attack: str) -> None:
    net = notebook_net()
    before = content(net.room_doc)
    size = len(net.room_doc.get_update())
    verdict = net.send(edit(net.sender, lambda d: CONTENT_ATTACKS[attack](cell(d, "free")["source"])), VIEWER)
    assert not verdict.accepted and not verdict.pending
    nowhere(net, verdict.forward)
    assert content(net.sender) == content(net.other) == content(net.room_doc) == before
    assert cell(net.sender, "free")["source"].diff() == cell(net.other, "free")["source"].diff()
    assert len(net.room_doc.get_update()) < size + 200


@pytest.mark.parametrize("rights", [EDITOR, RUNNER], ids=["editor", "runner"])
@pytest.mark.parametrize("attack", sorted(CONTENT_ATTACKS))
def test_restricted_writers_formatting_is_refused(attack: str, rights: Rights) -> None:
    """Formatting and embeds are refused whole (the connection closes); a shared type
    embedded in a text is an ordinary item, reverted like any other."""
    net = notebook_net()
    before = content(net.room_doc)
    state = net.guard.state()
    for target in ("locked", "free"):
        update = edit(net.sender, lambda d, target=target: CONTENT_ATTACKS[attack](cell(d, target)["source"]))
        verdict = net.guard.check(update, rights)
        if attack == "embed of a map" and rights.may_change(target, "source"):
            assert verdict.accepted  # theirs to write: a shared type is ordinary content
            net.room_doc.apply_update(verdict.forward or b"")
            net.broadcast()
            before = content(net.room_doc)
        elif attack == "embed of a map":
            assert not verdict.accepted and not verdict.pending
            net.room_doc.apply_update(verdict.forward or b"")
            net.broadcast()
            nowhere(net, verdict.forward)
            assert content(net.room_doc) == content(net.sender) == before
        else:
            assert verdict.pending and verdict.forward is None and "formatting" in verdict.reason
            assert not net.guard.stale and net.guard.state() == state
            net.sender = net.client()  # closed: it reconnects with a fresh replica


def test_the_owner_may_format() -> None:
    net = notebook_net()
    update = edit(net.sender, lambda d: CONTENT_ATTACKS["format"](cell(d, "locked")["source"]))
    assert net.send(update, FULL).accepted


NESTED_ATTACKS: dict[str, Callable[[Doc], None]] = {
    "nested new key": lambda d: cell(d, "locked")["metadata"].__setitem__(
        f"{MARK}-k", Map({f"{MARK}-inner": Array([Text(f"{MARK}-t"), Map({f"{MARK}-x": 1})])})),
    "key set and deleted": lambda d: set_and_delete(cell(d, "locked")["metadata"]),
    "output text": lambda d: cell(d, "locked")["outputs"][0]["text"].insert(0, f"{MARK}-out"),
}


def set_and_delete(target: Map) -> None:
    with target.doc.transaction():
        target[f"{MARK}-gone"] = f"{MARK}-value"
        del target[f"{MARK}-gone"]


@pytest.mark.parametrize("rights", [EDITOR, VIEWER], ids=["editor", "viewer"])
@pytest.mark.parametrize("attack", sorted(NESTED_ATTACKS))
def test_refused_nested_content_leaves_nothing(attack: str, rights: Rights) -> None:
    net = notebook_net()
    before = content(net.room_doc)
    verdict = net.send(edit(net.sender, NESTED_ATTACKS[attack]), rights)
    assert not verdict.accepted
    nowhere(net, verdict.forward)
    assert content(net.sender) == content(net.other) == content(net.room_doc) == before


@pytest.mark.parametrize("root", ["meta", "state", "a new root"])
def test_a_viewers_root_keys_and_root_names_leave_nothing(root: str) -> None:
    net = notebook_net()

    def add(doc: Doc) -> None:
        name = f"{MARK}-root" if root == "a new root" else root
        doc.get(name, type=Map)[f"{MARK}-key"] = f"{MARK}-value"

    verdict = net.send(edit(net.sender, add), VIEWER)
    assert not verdict.accepted
    nowhere(net, verdict.forward)
