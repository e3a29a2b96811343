"""Property test of the CRDT guard: random edits from clients with random rights.

Several pycrdt clients edit one notebook room through its DocumentGuard, as on the
shared server (tests/unit/test_guard.py: room doc, guard following it, the room's
updates broadcast to every client).  Edits include the content kinds a revert must
not leave behind: formatting, embeds, nested types, ids that are not plain strings,
root keys and roots.  A client's edits wait in its outbox until a ``flush`` step
sends them as one update (an offline client's step 2), so updates mix kinds.

After every step:

(a) every client with nothing left to send has converged with the room;
(b) the protected cell ``locked``, as the saved file will say it (``YNotebook.get``
    on a copy), is what the last unrestricted change left;
(c) no marker a restricted client introduced is in the room, the mirror, the store
    (every update the room took) or any other client's replica unless the room has
    shown it (allowed content), so nothing refused survives, not even invisibly.

A known limit is left out of (c) on purpose (docs/security.md, "What it cannot
promise"): map keys a writer sets and deletes in one update.
``benchmarks/fuzz_guard.py`` runs the same model for longer.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text, merge_updates

from hub_rtc.guard import DocumentGuard, Rights
from tests.unit.test_guard import NOTEBOOK

EDITOR = Rights(write=True, protected=frozenset({"locked"}))
RUNNER = Rights(write=False, protected=frozenset({"locked"}), run=True)
RIGHTS = {"owner": Rights.full(), "editor": EDITOR, "viewer": Rights.read_only(), "runner": RUNNER}


def marker(n: int) -> str:
    return f"Mk{n}q"


@dataclass
class Client:
    role: str
    doc: Doc
    outbox: list[bytes] = field(default_factory=list)

    @property
    def rights(self) -> Rights:
        return RIGHTS[self.role]


@dataclass
class Model:
    """A room, its guard, the store, and the clients."""

    roles: list[str]
    room: Doc = field(default_factory=Doc)
    store: list[bytes] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    #: markers that must not survive unseen, and who wrote them
    tracked: dict[str, Client] = field(default_factory=dict)
    #: markers the room has shown: allowed once, history may keep them (the store does)
    seen: set[str] = field(default_factory=set)
    counter: int = 0

    def __post_init__(self) -> None:
        YNotebook(self.room).set(NOTEBOOK)
        self.store.append(self.room.get_update())
        self.guard = DocumentGuard(self.room.get_update())
        self.room.observe(lambda event: self.guard.follow(event.update))
        self.room.observe(lambda event: self.store.append(event.update))
        self.clients = [self.connect(role) for role in self.roles]
        self.authorized = saved_locked(self.room)

    def connect(self, role: str) -> Client:
        doc: Doc = Doc()
        doc.apply_update(self.room.get_update())
        client = Client(role, doc)
        doc.observe(lambda event: client.outbox.append(event.update))
        return client

    def fresh_marker(self, client: Client, *, tracked: bool = True) -> str:
        self.counter += 1
        text = marker(self.counter)
        if tracked and client.role != "owner":
            self.tracked[text] = client
        return text

    # -- one step ---------------------------------------------------------------------

    def flush(self, index: int) -> None:
        client = self.clients[index]
        if not client.outbox:
            return
        update = merge_updates(*client.outbox)
        client.outbox.clear()
        verdict = self.guard.check(update, client.rights)
        if verdict.pending:
            # the adapter closes the socket (and resets a stale guard); the client
            # comes back with a fresh replica
            if self.guard.stale:
                self.guard.reset(self.room.get_update())
            self.clients[index] = self.connect(client.role)
        elif verdict.forward is not None:
            self.room.apply_update(verdict.forward)
        self.broadcast()
        if client.role == "owner" and not verdict.pending:
            self.authorized = saved_locked(self.room)

    def broadcast(self) -> None:
        full = self.room.get_update()
        for client in self.clients:
            before = len(client.outbox)
            client.doc.apply_update(full)
            del client.outbox[before:]  # what it hears is not its own to send

    # -- the properties ---------------------------------------------------------------

    def check(self) -> None:
        room = view(self.room)
        for client in self.clients:
            if not client.outbox:
                assert view(client.doc) == room, f"{client.role} has not converged"
        assert saved_locked(self.room) == self.authorized, "the protected cell changed"
        shown = json.dumps(room)
        shared = {"room": self.room.get_update(), "mirror": self.guard.state(), "store": b"".join(self.store)}
        for mark, author in self.tracked.items():
            if mark in shown:
                self.seen.add(mark)
            if mark in self.seen:
                continue
            # (its author's own replica keeps what it wrote: Yjs never forgets a key)
            places = {**shared, **{f"{c.role} {i}": c.doc.get_update() for i, c in enumerate(self.clients)
                                   if c is not author and not c.outbox}}
            for place, data in places.items():
                assert mark.encode() not in data, f"refused {mark} remains in the {place}"


def view(doc: Doc) -> dict[str, Any]:
    """The document as its users see it, formatting and embeds of sources included."""
    cells = doc.get("cells", type=Array)
    sources = [[(repr(_plain(chunk)), attrs) for chunk, attrs in c["source"].diff()]
               if isinstance(c, Map) and isinstance(c.get("source"), Text) else None for c in cells]
    return {"cells": json.loads(json.dumps(cells.to_py(), default=repr)), "sources": sources,
            "meta": doc.get("meta", type=Map).to_py(), "state": doc.get("state", type=Map).to_py()}


def _plain(value: object) -> object:
    return value.to_py() if isinstance(value, Map | Array | Text) else value


def saved_locked(room: Doc) -> list[Any]:
    """The ``locked`` cells as the save path writes them."""
    copy: Doc = Doc()
    copy.apply_update(room.get_update())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cells = YNotebook(copy).get()["cells"]
        except Exception as e:  # a save that fails is a protected state lost too
            return [f"save failed: {e!r}"]
    return [c for c in cells if c.get("id") == "locked"]


# -- the edits ------------------------------------------------------------------------


def cell_maps(doc: Doc) -> list[Map]:
    return [c for c in doc.get("cells", type=Array) if isinstance(c, Map)]


def plain_source(doc: Doc, pick: int) -> Text | None:
    """A cell's source holding only plain text (offsets are then UTF-8 bytes of str)."""
    cells = [c for c in cell_maps(doc) if isinstance(c.get("source"), Text)]
    if not cells:
        return None
    source: Text = cells[pick % len(cells)]["source"]
    if any(attrs or not isinstance(chunk, str) for chunk, attrs in source.diff()):
        return None
    return source


def offset(text: Text, pick: int) -> int:
    plain = str(text)
    return len(plain[: pick % (len(plain) + 1)].encode())


def edit_text(m: Model, c: Client, pick: int, at: int, kind: str) -> None:
    source = plain_source(c.doc, pick)
    if source is None:
        return
    start = offset(source, at)
    mark = m.fresh_marker(c)
    if kind == "type":
        source.insert(start, mark)
    elif kind == "delete":
        end = offset(source, at + 3)
        if end > start:
            del source[start:end]
    elif kind == "format":
        end = offset(source, at + 4)
        if end > start:
            source.format(start, end, {mark: f"{mark}v"})
    elif kind == "attrs":
        source.insert(start, mark, {f"{mark}a": f"{mark}v"})
    elif kind == "embed":
        source.insert_embed(start, {mark: mark + "e" * 500})
    elif kind == "embed-map":
        source.insert_embed(start, Map({mark: Text(mark)}))


def edit_cell(m: Model, c: Client, pick: int, kind: str) -> None:
    cells = cell_maps(c.doc)
    if not cells:
        return
    target = cells[pick % len(cells)]
    if kind == "metadata":
        meta = target.get("metadata")
        if isinstance(meta, Map):
            mark = m.fresh_marker(c)
            meta[mark] = Map({mark: Array([Text(mark), Map({mark: 1})])}) if pick % 2 else mark
    elif kind == "set-delete":
        meta = target.get("metadata")
        if isinstance(meta, Map):
            mark = m.fresh_marker(c, tracked=c.role == "viewer")  # a writer's: known limit
            with c.doc.transaction():
                meta[mark] = mark
                del meta[mark]
    elif kind == "outputs":
        outputs = target.get("outputs")
        if isinstance(outputs, Array):
            mark = m.fresh_marker(c)
            outputs.append(Map({"output_type": "stream", "name": "stdout", "text": Text(mark)}))
    elif kind == "execution_count":
        target["execution_count"] = pick
    elif kind == "deep":
        level = target.get("metadata")
        if isinstance(level, Map):
            mark = m.fresh_marker(c)
            with c.doc.transaction():
                for _ in range(40):
                    level[mark] = Map()
                    level = level[mark]


def cell_list(m: Model, c: Client, pick: int, kind: str) -> None:
    cells = c.doc.get("cells", type=Array)
    ids = [cell.get("id") for cell in cell_maps(c.doc)]
    if kind == "delete" and len(cells):
        del cells[pick % len(cells)]
    elif kind == "move" and len(cells) > 1:
        index = pick % len(cells)
        old = cells[index]
        if isinstance(old, Map):
            copy = old.to_py() or {}
            with c.doc.transaction():
                del cells[index]
                cells.append(Map({**copy, "source": Text(str(copy.get("source", ""))),
                                  "metadata": Map(), "outputs": Array()}))
    elif kind.startswith("insert") or kind.startswith("rename"):
        mark = m.fresh_marker(c)
        new_id: object = {
            "fresh": f"{mark}id",
            "dup": str(ids[pick % len(ids)]) if ids else "locked",
            "text": Text("locked"),
            "number": pick,
        }[kind.split("-")[1]]
        if kind.startswith("insert"):
            cells.insert(pick % (len(cells) + 1), Map({
                "id": new_id, "cell_type": "code", "source": Text(mark), "metadata": Map(),
                "outputs": Array(), "execution_count": None}))
        elif cell_maps(c.doc):
            cell_maps(c.doc)[pick % len(cell_maps(c.doc))]["id"] = new_id


def edit_roots(m: Model, c: Client, pick: int, kind: str) -> None:
    # a viewer's and a runner's root keys and roots are refused and leave nothing; a
    # writer may add keys
    tracked = c.role in ("viewer", "runner")
    if kind == "meta-key":
        mark = m.fresh_marker(c, tracked=tracked)
        c.doc.get("meta" if pick % 2 else "state", type=Map)[mark] = mark
    elif kind == "new-root" and tracked:
        mark = m.fresh_marker(c)
        c.doc.get(f"{mark}root", type=Map)[mark] = mark
    elif kind == "nbformat":
        c.doc.get("meta", type=Map)["nbformat_minor"] = pick % 6


TEXT = ["type", "delete", "format", "attrs", "embed", "embed-map"]
CELL = ["metadata", "set-delete", "outputs", "execution_count", "deep"]
LIST = ["delete", "move", "insert-fresh", "insert-dup", "insert-text", "insert-number",
        "rename-fresh", "rename-dup", "rename-text", "rename-number"]
ROOT = ["meta-key", "new-root", "nbformat"]

Step = tuple[str, int, int, int]
STEPS: dict[str, Callable[[Model, Client, int, int, str], None]] = {
    **{f"text:{k}": lambda m, c, p, a, k=k: edit_text(m, c, p, a, k) for k in TEXT},
    **{f"cell:{k}": lambda m, c, p, a, k=k: edit_cell(m, c, p, k) for k in CELL},
    **{f"list:{k}": lambda m, c, p, a, k=k: cell_list(m, c, p, k) for k in LIST},
    **{f"root:{k}": lambda m, c, p, a, k=k: edit_roots(m, c, p, k) for k in ROOT},
}


def run(roles: list[str], steps: list[Step]) -> None:
    model = Model(roles)
    model.check()
    for name, who, pick, at in steps:
        index = who % len(model.clients)
        if name == "flush":
            model.flush(index)
        else:
            client = model.clients[index]
            STEPS[name](model, client, pick, at)  # type: ignore[call-arg]
        model.check()
    for index in range(len(model.clients)):
        model.flush(index)
        model.check()


roles_strategy = st.lists(st.sampled_from(sorted(RIGHTS)), min_size=2, max_size=4)
step_strategy = st.tuples(st.sampled_from(sorted(STEPS) + ["flush"] * 6), st.integers(0, 3),
                          st.integers(0, 50), st.integers(0, 50))
steps_strategy = st.lists(step_strategy, max_size=30)

PROFILE = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(roles=roles_strategy, steps=steps_strategy)
# what longer runs found, kept: a Text id given by the owner to a free cell, then edited
# by an editor; a refused edit of a locked cell the owner had put an embed in; a viewer
# setting a key an editor set concurrently; the format version taken across 4.5 and back
@example(roles=["editor", "owner", "editor"],
         steps=[("cell:execution_count", 2, 0, 0), ("list:rename-text", 1, 0, 0)])
@example(roles=["owner", "editor"], steps=[("text:delete", 1, 1, 0), ("text:embed", 0, 1, 0)])
@example(roles=["editor", "viewer"],
         steps=[("cell:execution_count", 1, 50, 0), ("cell:execution_count", 0, 8, 0)])
@example(roles=["editor", "owner"],
         steps=[("root:nbformat", 0, 17, 0), ("root:nbformat", 1, 0, 0), ("flush", 1, 0, 0)])
@example(roles=["runner", "viewer", "viewer"],
         steps=[("list:rename-fresh", 3, 23, 19), ("flush", 2, 43, 36), ("text:type", 1, 24, 5),
                ("list:rename-text", 1, 13, 45), ("list:rename-number", 1, 33, 11)])
def test_random_edits_by_clients_with_random_rights(roles: list[str], steps: list[Step]) -> None:
    run(roles, steps)
