"""Per-update write checks for one collaborative document.

The guard keeps a *mirror*: a plain ``pycrdt.Doc`` replica of the room's document.
A client's update is applied to the mirror first, inside a transaction whose deep
events say which cells and keys it touched.  What the user may not change is then
reverted on the mirror in a second transaction, and the room receives the net
result, ``mirror.get_update(state_before)``:

- the client's items are in it, so later updates that build on them integrate;
- the refused items are already deleted and garbage-collected, so their content is
  not in the bytes the room applies, stores, or sends to anyone;
- the revert is in it too, so every replica, the sender's included, converges on
  the authorized state.

The mirror is never wrapped in ``jupyter_ydoc.YNotebook`` and never given an
UndoManager: an UndoManager keeps deleted items alive, so rejected text would stay
encoded in the document.

Before any of that, :mod:`._scan` reads the update whole (pycrdt would size buffers
from counts it declares), and updates beyond :class:`~.rights.Limits`, malformed
ones, and formatting or embeds from restricted writers (no revert removes them) are
refused whole.  A reader's update never reaches the mirror as sent: its items arrive
stripped of all content (:func:`._scan.strip`), so there is nothing of it to revert.

Typical use by the room adapter, one guard per room::

    guard = DocumentGuard(room_doc.get_update())
    room_doc.observe(lambda event: guard.follow(event.update))
    verdict = guard.check(update, rights)      # per SYNC_STEP2 / SYNC_UPDATE
    if verdict.pending:                        # close that connection, then
        guard.reset(room_doc.get_update())
    elif verdict.forward is not None:
        room_doc.apply_update(verdict.forward)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pycrdt import Array, ArrayEvent, Doc, Map, MapEvent, Subscription, Text, TextEvent

from ._content import (
    Delta,
    Snap,
    build,
    invert_array,
    invert_text,
    old_index,
    restore_in_place,
    restore_key,
    take,
)
from ._scan import ContentKind, Scan, ScanError, scan, strip, strip_outside
from ._updates import fully_integrated
from .rights import Limits, Rights

__all__ = ["DEFAULT_ROOTS", "DocumentGuard", "RootType", "Touch", "Verdict"]

RootType = type[Text] | type[Array] | type[Map]
Shared = Text | Array | Map

#: Roots of jupyter_ydoc documents whose type is known by name.  A plain text file's
#: ``source`` is a Text but a blob's is a Map, so ``source`` is not guessed here.
DEFAULT_ROOTS: Mapping[str, RootType] = {"cells": Array, "meta": Map, "state": Map}
CELLS = "cells"
_ROOT_PARTS = {"meta": "notebook", "state": "state"}
#: The mirror writes its reverts as the highest client id a Yjs client can read.  When
#: a reverted map entry and the refused one it replaces follow the same entry, Yjs
#: orders them by client id and the rightmost wins, so the revert wins in every
#: replica, the refused sender's included, even where the sender's entry survives only
#: in its own replica (a reader's: everywhere else it is a bare range).
MIRROR_CLIENT = 2**53 - 1
#: a reader's refused update is attributed to cells by replaying it on a copy of the
#: mirror while the document is smaller than this; beyond, to the document
ATTRIBUTION_BYTES = 2 * 1024 * 1024
#: keys of the ``meta`` root that decide how cells are saved
FORMAT_KEYS = frozenset({"nbformat", "nbformat_minor"})
Arrays = Mapping[tuple[Any, ...], Delta]
_EVENT_KINDS: dict[type, str] = {TextEvent: "text", MapEvent: "map", ArrayEvent: "array"}


@dataclass(frozen=True)
class Touch:
    """One part of the document an update changed.

    ``cell_id`` is None outside the cells list.  ``part`` is a cell key (``source``,
    ``metadata``, ``outputs``, ``execution_count``, ``id``...), ``insert`` or
    ``delete`` for a whole cell, or for other roots ``notebook`` (``meta``),
    ``state`` (``state``) and ``document`` (any other root).
    """

    cell_id: str | None
    part: str


@dataclass(frozen=True)
class Verdict:
    """What to do with one client update.

    ``forward`` is what the room applies and broadcasts (None: nothing).  When part of
    the update was refused, ``accepted`` is False and ``forward`` carries the update's
    net result with the refused part already reverted.
    """

    accepted: bool
    forward: bytes | None
    touched: tuple[Touch, ...] = ()
    refused: tuple[Touch, ...] = ()
    pending: bool = False
    #: set when the whole update was refused and nothing forwarded: why, for the
    #: close message; the connection should be closed (and the guard reset if stale)
    reason: str = ""
    #: the update was well-formed but beyond a :class:`Limits` bound (close code 4413)
    limit: bool = False


_PENDING = Verdict(accepted=False, forward=None, pending=True)

#: content kinds no jupyter_ydoc document uses.  Formatting items survive every
#: revert the pycrdt API can make (deleting the text around them leaves them in
#: place), so a restricted user's update carrying any of them is refused whole.
FOREIGN_KINDS = frozenset({ContentKind.JSON, ContentKind.EMBED, ContentKind.FORMAT, ContentKind.DOC})
#: content kinds that can hold containers (shared types, JSON-like values)
NESTING_KINDS = frozenset({ContentKind.JSON, ContentKind.EMBED, ContentKind.TYPE, ContentKind.ANY})


def _refused_whole(reason: str, *, limit: bool = False) -> Verdict:
    # pending: like an update that cannot be integrated, the connection must go
    return Verdict(accepted=False, forward=None, pending=True, reason=reason, limit=limit)


@dataclass(slots=True)
class _Batch:
    """The deep events one root emitted in the checked transaction."""

    root: str
    events: list[Any]
    #: cell ids before the transaction (cells root only)
    old_ids: list[str | None] = field(default_factory=list)


@dataclass(slots=True)
class _Before:
    """Copies of what a refused change may have to restore, taken before applying it."""

    cells: dict[str, Snap] = field(default_factory=dict)
    #: cells without a unique id, by index
    anon: dict[int, Snap] = field(default_factory=dict)
    roots: dict[str, Snap] = field(default_factory=dict)

    def cell(self, index: int | None, cell_id: str | None) -> Snap | None:
        if index is not None and index in self.anon:
            return self.anon[index]
        return self.cells.get(cell_id) if cell_id is not None else None


@dataclass(frozen=True, slots=True)
class _Target:
    """Where refused events happened: a root, and the copy their paths lead into.

    For the cells root, ``base`` is 1: a path starts with the cell's index and
    ``snap`` is that cell's copy.  For other roots, ``base`` is 0 and ``snap`` is the
    root's copy.  ``arrays`` holds the deltas of the arrays the update changed.
    """

    root: str
    base: int
    snap: Snap | None
    arrays: Arrays

    def copy_at(self, path: Sequence[Any]) -> Snap | None:
        return _descend(self.snap, path[self.base :], self.arrays, path[: self.base])

    def stable(self, path: list[Any]) -> list[Any]:
        """The longest prefix of ``path`` that stays valid while nested arrays the
        update changed are reverted in place (indexes into them move)."""
        for end in range(self.base, len(path)):
            if tuple(path[:end]) in self.arrays:
                return path[:end]
        return path


@dataclass(slots=True)
class _Plan:
    """Touches sorted into allowed and refused, and the edits that revert the latter."""

    touched: dict[Touch, None] = field(default_factory=dict)
    refused: dict[Touch, None] = field(default_factory=dict)
    #: in-place reverts, then whole values replaced from copies, then `late`: cells
    #: re-inserted or removed.  Until `late`, indexes into the cells stay valid.
    undo: list[Callable[[], None]] = field(default_factory=list)
    #: copies to put back whole, by (root, *path)
    replace: dict[tuple[Any, ...], Snap | None] = field(default_factory=dict)
    late: list[Callable[[], None]] = field(default_factory=list)
    new_roots: dict[str, RootType] = field(default_factory=dict)

    def note(self, touch: Touch, allowed: bool) -> None:
        (self.touched if allowed else self.refused)[touch] = None


class DocumentGuard:
    """Checks client updates to one document against per-user rights.

    ``initial`` is the room document's full update.  ``roots`` names the type of root
    types beyond :data:`DEFAULT_ROOTS` (e.g. ``{"source": Text}`` for a text file);
    the adapter can take them from the room doc.  Roots it does not name are typed by
    looking at their content when the guard first needs them.
    """

    def __init__(
        self,
        initial: bytes | None = None,
        *,
        roots: Mapping[str, RootType] | None = None,
        limits: Limits | None = None,
    ):
        self._hints: dict[str, RootType] = {**DEFAULT_ROOTS, **(roots or {})}
        self.limits = limits or Limits()
        self._load(initial)

    # -- lifecycle ----------------------------------------------------------------

    def reset(self, full_update: bytes) -> None:
        """Rebuild the mirror from the room doc's full update (after a pending verdict)."""
        self._load(full_update)

    @property
    def stale(self) -> bool:
        """True once the mirror may differ from the room; checks then return pending."""
        return self._stale

    @property
    def doc(self) -> Doc:
        """The mirror (for tests and diagnostics; do not edit it)."""
        return self._mirror

    def state(self) -> bytes:
        """The mirror's full update."""
        return self._mirror.get_update()

    def _load(self, initial: bytes | None) -> None:
        self._mirror: Doc = Doc(client_id=MIRROR_CLIENT)
        self._roots: dict[str, Shared] = {}
        self._subscriptions: list[Subscription] = []
        self._cells: Array | None = None
        self._ids: list[str | None] = []
        self._positions: dict[str, list[int]] | None = None
        self._cell_cache: dict[str, Snap] = {}
        self._root_cache: dict[str, Snap] = {}
        self._recording: list[_Batch] | None = None
        self._stale = False
        #: an upper bound of the encoded mirror's size, made exact when it nears the limit
        self._size = len(initial or b"")
        if initial:
            self._mirror.apply_update(initial)
        for name, kind in self._hints.items():
            self._watch(name, kind)
        self._watch_unknown_roots()

    # -- following the room -------------------------------------------------------

    def follow(self, update: bytes) -> None:
        """Apply an update the room already holds (its own, or one the guard forwarded).

        Idempotent: an echo of a forwarded update changes nothing.
        """
        if self._stale:
            return
        self._size += len(update)
        try:
            self._mirror.apply_update(update)
        except ValueError:
            self._stale = True
            return
        if not fully_integrated(update, self._mirror.get_state()):
            self._stale = True

    # -- checking a client --------------------------------------------------------

    def check(self, update: bytes, rights: Rights) -> Verdict:
        """Integrate a client's SYNC_STEP2 / SYNC_UPDATE payload and judge it.

        An update that cannot be integrated (missing dependencies) or decoded comes
        back ``pending``, with nothing to forward; the connection should be closed.
        After a pending verdict the guard may be :attr:`stale` and then needs
        :meth:`reset` before it checks anything again.
        """
        if self._stale:
            return _PENDING
        screened = self._screen(update, rights)
        if isinstance(screened, Verdict):
            return screened
        reader = not rights.write and not rights.run
        created: list[Touch] = []
        payload = update
        if reader and screened.items:
            # Nothing a reader creates may exist anywhere, so the mirror never gets it:
            # the same items without content, and the reader's deletions to judge.
            full = self._mirror.get_update()
            created = self._reader_touches(update, full)
            update = strip(update, screened, set(self._mirror.keys()), partial(_known_name, full))
        elif not rights.write and screened.items:
            # a runner writes results into the cells, nothing else: what they send
            # elsewhere reaches the mirror without content, key or root names either
            update = strip_outside(update, screened, CELLS, set(self._mirror.keys()),
                                   lambda name: _known_name(self._mirror.get_update(), name))
        if not rights.write:
            self._watch_unknown_roots()
        before = _Before() if rights.unrestricted else self._prepare(rights)
        state_before = self._mirror.get_state()
        batches = self._integrate(update, state_before)
        if batches is None:
            return _PENDING
        too_deep = _too_deep(batches, self.limits.max_depth, bool(screened.kinds & NESTING_KINDS))
        if too_deep:
            self._stale = True  # the mirror holds it: only a rebuild from the room undoes that
            return _refused_whole(too_deep, limit=True)
        if rights.write and not batches and self._mirror.get_state() != state_before:
            # New content but no event: it went to a root nobody watches yet (a text
            # file's source that loaded after the guard was built).  Allowed for a
            # writer; watch it from now on.  (A reader's check watched every root first.)
            batches = [_Batch(name, []) for name in self._watch_unknown_roots()]
        if update is not payload and not created and self._mirror.get_state() != state_before:
            created = [Touch(None, "document")]  # new, yet nothing anyone can see
        plan = self._plan(batches, rights, before)
        for touch in created:
            plan.note(touch, False)
        if not plan.refused:
            # (a reader's update then held only what the mirror already had)
            return Verdict(accepted=True, forward=payload, touched=tuple(plan.touched))
        try:
            self._revert(plan)
        except BaseException as e:
            if type(e).__name__ != "PanicException":  # pycrdt's panics are BaseExceptions
                raise
            self._stale = True
            return _refused_whole("the update could not be reverted")
        forward = self._mirror.get_update(state_before)
        return Verdict(False, forward, tuple(plan.touched), tuple(plan.refused))

    def _screen(self, update: bytes, rights: Rights) -> Scan | Verdict:
        """Read ``update`` before pycrdt does: its scan, or the verdict refusing it whole."""
        limits = self.limits
        if len(update) > limits.max_update:
            return _refused_whole(f"update of {len(update)} bytes exceeds {limits.max_update}", limit=True)
        try:
            scanned = scan(update, max_depth=limits.max_depth)
        except ScanError as e:
            return _refused_whole(f"update refused: {e.reason}", limit=e.limit)
        if scanned.items and self._size + len(update) > limits.max_document:
            self._size = len(self._mirror.get_update())  # the bound was loose: measure
            if self._size + len(update) > limits.max_document:
                return _refused_whole(f"the document would exceed {limits.max_document} bytes", limit=True)
        # (what a reader creates never reaches the mirror at all, see check)
        restricted = not rights.unrestricted and (rights.write or rights.run)
        if restricted and scanned.kinds & FOREIGN_KINDS:
            return _refused_whole("formatting, embeds, subdocuments and JSON content are not allowed")
        return scanned

    def _reader_touches(self, update: bytes, full: bytes) -> list[Touch]:
        """What a reader's update would have changed, for attribution only.

        Read on a throw-away copy of the mirror (the mirror itself never holds a
        reader's content); past :data:`ATTRIBUTION_BYTES` the copy costs too much for
        a refused update, and the touch names the document only.
        """
        if self._size > ATTRIBUTION_BYTES:
            return [Touch(None, "document")]
        scratch: Doc = Doc()
        scratch.apply_update(full)
        recorded: list[tuple[str, list[Any]]] = []
        subscriptions = [
            scratch.get(name, type=type(root)).observe_deep(partial(_record, recorded, name))
            for name, root in self._roots.items()
        ]
        try:
            scratch.apply_update(update)
        except ValueError:
            return [Touch(None, "document")]
        touches = [Touch(None, "document") for name in scratch.keys() if name not in self._roots]
        for name, events in recorded:
            if name == CELLS:
                touches += _cell_touches(events, self._ids)
            else:
                touches.append(Touch(None, _ROOT_PARTS.get(name, "document")))
        del subscriptions
        return touches

    def _integrate(self, update: bytes, state_before: bytes) -> list[_Batch] | None:
        """Apply ``update`` recording its events; None if it cannot be (fully) applied."""
        batches: list[_Batch] = []
        self._recording = batches
        try:
            self._mirror.apply_update(update)
        except ValueError:
            # pycrdt decodes the whole update before integrating any of it, so an
            # undecodable update leaves the mirror as it was.
            self._stale = self._mirror.get_state() != state_before
            return None
        finally:
            self._recording = None
        if not fully_integrated(update, self._mirror.get_state()):
            # Part of it may be integrated and the rest waits inside the mirror for
            # dependencies the room never sent through us: only a rebuild is safe.
            self._stale = True
            return None
        return batches

    def _plan(self, batches: list[_Batch], rights: Rights, before: _Before) -> _Plan:
        plan = _Plan()
        for batch in batches:
            if batch.root == CELLS and self._cells is not None:
                self._plan_cells(batch, rights, before, plan)
            else:
                self._plan_root(batch, rights, before, plan)
        if not rights.write:
            self._plan_new_roots(plan)
        return plan

    def _revert(self, plan: _Plan) -> None:
        # A transaction of its own: when it commits, the refused items are deleted and
        # their content garbage-collected before anyone encodes the mirror.
        with self._mirror.transaction():
            for undo in plan.undo:
                undo()
            self._replace_all(plan.replace)
            for undo in plan.late:
                undo()
        for name, kind in plan.new_roots.items():
            self._watch(name, kind)

    # -- snapshots ----------------------------------------------------------------

    def _prepare(self, rights: Rights) -> _Before:
        """Copies of everything ``rights`` forbids changing, from the cache when valid."""
        before = _Before()
        with self._mirror.transaction():  # one transaction for all the reads
            if self._cells is not None:
                self._copy_cells(self._cells, rights, before)
            if not rights.write:
                self._copy_roots(before)
        return before

    def _copy_cells(self, cells: Array, rights: Rights, before: _Before) -> None:
        positions = self._cell_positions()
        for cell_id in rights.protected if rights.write else positions:
            places = positions.get(cell_id, [])
            if len(places) == 1:
                if cell_id not in self._cell_cache:
                    self._cell_cache[cell_id] = take(cells[places[0]])
                before.cells[cell_id] = self._cell_cache[cell_id]
            else:
                # A duplicated id cannot key a copy: copy each occurrence by position.
                for index in places:
                    before.anon[index] = take(cells[index])
        if not rights.write:
            for index, maybe_id in enumerate(self._ids):
                if maybe_id is None:
                    before.anon[index] = take(cells[index])

    def _copy_roots(self, before: _Before) -> None:
        for name, root in self._roots.items():
            if root is self._cells:
                continue
            if name not in self._root_cache:
                self._root_cache[name] = take(root)
            before.roots[name] = self._root_cache[name]

    def _cell_positions(self) -> dict[str, list[int]]:
        if self._positions is None:
            positions: dict[str, list[int]] = {}
            for index, cell_id in enumerate(self._ids):
                if cell_id is not None:
                    positions.setdefault(cell_id, []).append(index)
            self._positions = positions
        return self._positions

    # -- roots and their observers ------------------------------------------------

    def _watch(self, name: str, kind: RootType) -> None:
        root = self._mirror.get(name, type=kind)
        self._roots[name] = root
        if name == CELLS and isinstance(root, Array):
            self._cells = root
            self._ids = _read_ids(root)
            self._positions = None
            self._subscriptions.append(root.observe_deep(self._on_cells))
        else:
            self._subscriptions.append(root.observe_deep(partial(self._on_root, name)))

    def _watch_unknown_roots(self) -> list[str]:
        unknown = [name for name in self._mirror.keys() if name not in self._roots]
        for name, kind in self._probe(unknown).items():
            self._watch(name, kind)
        return unknown

    def _probe(self, names: Sequence[str]) -> dict[str, RootType]:
        """The type of roots nobody named, read from a scratch copy of the mirror.

        Reading a root as some type fixes its type for good, so the guess is made on a
        throw-away doc.  Names the guard was told about win over guessing.
        """
        if not names:
            return {}
        scratch: Doc = Doc()
        scratch.apply_update(self._mirror.get_update())
        return {name: self._hints.get(name) or _guess_type(scratch, name) for name in names}

    def _on_cells(self, events: list[Any]) -> None:
        """Keep the id list and the cell cache in step with every change to the cells."""
        old_ids = self._ids
        ids = old_ids
        for event in events:
            if not event.path:
                ids = self._apply_list_event(event.delta, ids)
        for event in events:
            if _is_rename(event):
                ids = ids if ids is not old_ids else list(ids)
                self._rename(event, ids)
            elif _in_id(event) and self._cells is not None and 0 <= event.path[0] < len(ids):
                ids = ids if ids is not old_ids else list(ids)  # a Text id was edited
                self._forget([ids[event.path[0]]])
                ids[event.path[0]] = _cell_id(self._cells[event.path[0]])
            elif event.path:
                self._forget([_at(ids, event.path[0])])
        if ids is not old_ids:
            self._ids = ids
            self._positions = None
        if self._recording is not None:
            self._recording.append(_Batch(CELLS, events, old_ids))

    def _apply_list_event(self, delta: Delta, ids: list[str | None]) -> list[str | None]:
        # A cell that comes or goes (a move is both) may come back different.
        moved: list[str | None] = []
        new = _ids_after(delta, ids, moved)
        self._forget(moved)
        return new

    def _forget(self, cell_ids: list[str | None]) -> None:
        for cell_id in cell_ids:
            if cell_id is not None:
                self._cell_cache.pop(cell_id, None)

    def _rename(self, event: Any, ids: list[str | None]) -> None:
        index = event.path[0]
        if 0 <= index < len(ids):
            ids[index], old = _normal_id(event.keys["id"].get("newValue")), ids[index]
            self._forget([old, ids[index]])

    def _on_root(self, name: str, events: list[Any]) -> None:
        self._root_cache.pop(name, None)
        if self._recording is not None:
            self._recording.append(_Batch(name, events))

    # -- judging the cells list ---------------------------------------------------

    def _plan_cells(self, batch: _Batch, rights: Rights, before: _Before, plan: _Plan) -> None:
        arrays = _array_deltas(batch.events)
        # (from the ids before: an event's old value may be a deleted type, unreadable)
        renames = {e.path[0]: _at(batch.old_ids, old_index(arrays.get(()), e.path[0]))
                   for e in batch.events if _is_rename(e)}
        for event in batch.events:
            if not event.path:
                self._plan_cell_list(event.delta, batch.old_ids, rights, before, plan)
            elif _in_id(event):
                self._plan_id_edit(event, batch.old_ids, arrays, rights, plan)
            else:
                self._plan_cell_change(event, renames, arrays, rights, before, plan)

    def _plan_id_edit(
        self, event: Any, old_ids: list[str | None], arrays: Arrays, rights: Rights, plan: _Plan
    ) -> None:
        """An edit inside a cell's id that is a shared type: the save path reads a Text
        id as its string, so this renames the cell.  Only unrestricted users may."""
        index = event.path[0]
        old = _at(old_ids, old_index(arrays.get(()), index))
        ok = rights.unrestricted
        plan.note(Touch(old, "id"), ok)
        plan.note(Touch(_at(self._ids, index), "id"), ok)
        if not ok and old is not None and _kind(event) == "text" and len(event.path) == 2:
            plan.undo.append(partial(invert_text, event.target, event.delta, old))

    def _plan_cell_list(
        self, delta: Delta, old_ids: list[str | None], rights: Rights, before: _Before, plan: _Plan
    ) -> None:
        """Cells inserted and deleted; a move is a delete plus an insert of a copy."""
        allowed: list[bool] = []
        old = new = 0
        for op in delta:
            if "retain" in op:
                old += op["retain"]
                new += op["retain"]
            elif "insert" in op:
                count = len(op["insert"])
                for value, cid in zip(op["insert"], self._ids[new : new + count], strict=True):
                    allowed.append(self._judge_insert(rights, plan, value, cid))
                new += count
            elif "delete" in op:
                gone = [_at(old_ids, old + k) for k in range(op["delete"])]
                allowed += [self._judge(rights, plan, cid, "delete") for cid in gone]
                old += op["delete"]
        if not all(allowed):
            plan.late.append(partial(self._undo_cell_list, delta, allowed, old_ids, before))

    def _judge(self, rights: Rights, plan: _Plan, cell_id: str | None, part: str) -> bool:
        ok = rights.may_change(cell_id, part)
        plan.note(Touch(cell_id, part), ok)
        return ok

    def _judge_insert(self, rights: Rights, plan: _Plan, value: object, cell_id: str | None) -> bool:
        ok = rights.may_change(cell_id, "insert")
        if ok and not rights.unrestricted:
            ok = isinstance(value, Map) and self._sound_id(value.get("id"), "add")
        plan.note(Touch(cell_id, "insert"), ok)
        return ok

    def _sound_id(self, value: object, action: object) -> bool:
        """Whether a cell may (newly) carry the id ``value``, judged as the saved file
        will say it, for someone whose rights protect cells.

        The save path writes ``YNotebook.get()``: that reads an id through ``to_py``
        (a Text becomes its string) and gives the second of two cells sharing an id a
        new one, also in the room's doc.  So an id that is not a plain string, or that
        another cell already has, could take a protected cell's id from it on disk.
        A cell without an id gets a random one from nbformat: refused as well.
        """
        if action == "delete" or type(value) is not str:
            return False
        return len(self._cell_positions().get(value, ())) == 1

    def _plan_cell_change(
        self,
        event: Any,
        renames: dict[int, str | None],
        arrays: Arrays,
        rights: Rights,
        before: _Before,
        plan: _Plan,
    ) -> None:
        """A change inside one cell: its keys (path [i]) or deeper (path [i, key, ...])."""
        index = event.path[0]
        new_id = _at(self._ids, index)
        cell_id = renames.get(index, new_id)  # the cell as the user found it
        if len(event.path) > 1:
            if self._judge(rights, plan, cell_id, str(event.path[1])):
                return
            refused = _keys(event)
        else:
            refused = [key for key in event.keys
                       if not self._judge_key(rights, plan, cell_id, new_id, key, event.keys[key])]
            if not refused:
                return
        snap = before.cell(old_index(arrays.get(()), index), cell_id)
        if self._plan_fix(plan, _Target(CELLS, 1, snap, arrays), event, refused):
            return
        if len(event.path) == 1:
            plan.undo.append(partial(_undo_keys_from_event, event, refused))
        elif snap is not None:
            # The old content at that path is unknown (an array both restructured and
            # edited inside): restore the cell's whole top-level key instead.
            self._plan_replace(plan, CELLS, event.path[:2], snap.child(event.path[1]))

    def _judge_key(
        self,
        rights: Rights,
        plan: _Plan,
        cell_id: str | None,
        new_id: str | None,
        key: str,
        change: Mapping[str, Any],
    ) -> bool:
        if key != "id":
            return self._judge(rights, plan, cell_id, key)
        # Renaming touches both ids: a cell may neither lose nor take a protected id.
        ok = rights.may_edit(cell_id) and rights.may_edit(new_id)
        if ok and not rights.unrestricted:
            ok = self._sound_id(change.get("newValue"), change.get("action"))
        plan.note(Touch(cell_id, key), ok)
        plan.note(Touch(new_id, key), ok)
        return ok

    # -- judging other roots ------------------------------------------------------

    def _plan_root(self, batch: _Batch, rights: Rights, before: _Before, plan: _Plan) -> None:
        plan.note(Touch(None, _ROOT_PARTS.get(batch.root, "document")), rights.write)
        if rights.write:
            if batch.root == "meta" and not rights.unrestricted:
                self._plan_format_keys(batch, plan)
            return
        snap = before.roots.get(batch.root)
        arrays = _array_deltas(batch.events)
        target = _Target(batch.root, 0, snap, arrays)
        fixed = [self._plan_fix(plan, target, event, _keys(event)) for event in batch.events]
        if (not batch.events or not all(fixed)) and snap is not None:
            # Some change cannot be reverted event by event: restore the whole root.
            self._plan_replace(plan, batch.root, [], snap)

    def _plan_format_keys(self, batch: _Batch, plan: _Plan) -> None:
        """The notebook's format version decides what the save path does with cell ids:
        below 4.5 ``YNotebook.get()`` drops them all, and the reload gives every cell,
        protected ones too, a random id.  Restricted users may change the version, but
        not across that line, either way."""
        meta = self._roots["meta"]
        if not isinstance(meta, Map):
            return
        now = {key: meta.get(key) for key in FORMAT_KEYS}
        for event in batch.events:
            if event.path or _kind(event) != "map":
                continue
            keys = [key for key in event.keys if key in FORMAT_KEYS]
            was = {**now, **{key: event.keys[key].get("oldValue") for key in keys}}
            if keys and _keeps_ids(was["nbformat"], was["nbformat_minor"]) != _keeps_ids(
                    now["nbformat"], now["nbformat_minor"]):
                plan.note(Touch(None, "notebook"), False)
                plan.undo.append(partial(_undo_keys_from_event, event, keys))

    # -- reverting ------------------------------------------------------------------

    def _plan_fix(self, plan: _Plan, target: _Target, event: Any, keys: list[str]) -> bool:
        """Plan the revert of one refused event from the copy; False if it has none.

        Yjs keeps the key of a deleted map entry in the document, so a refused *new*
        key would survive as a tombstone (so would one set and deleted in the same
        update, seen as a change without keys); replacing the whole map from the copy
        drops it along with the map (impossible for a root map, whose tombstones remain).
        """
        path = list(event.path)
        node = target.copy_at(path)
        if node is None or node.kind != _kind(event):
            return False
        if node.kind == "map" and path and (_adds_keys(event, keys) or not event.keys):
            where = target.stable(path)
            self._plan_replace(plan, target.root, where, target.copy_at(where))
        else:
            plan.undo.append(partial(_undo_event, event, node, keys))
        return True

    def _plan_replace(self, plan: _Plan, root: str, path: Sequence[Any], node: Snap | None) -> None:
        plan.replace.setdefault((root, *path), node)

    def _replace_all(self, replace: dict[tuple[Any, ...], Snap | None]) -> None:
        """Run planned replacements, outermost first; what lies inside one is covered."""
        done: list[tuple[Any, ...]] = []
        for where in sorted(replace, key=len):
            if not any(where[: len(outer)] == outer for outer in done):
                self._replace_at(where[0], list(where[1:]), replace[where])
                done.append(where)

    def _replace_at(self, root: str, path: list[Any], node: Snap | None) -> None:
        """Put a copy of ``node`` at ``path`` (None: nothing there), replacing what is there."""
        if not path:
            if node is not None:
                restore_in_place(self._roots[root], node)
            return
        parent: Any = self._roots[root]
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if isinstance(last, str):
            restore_key(parent, last, node)
        elif node is not None:
            del parent[last]
            parent.insert(last, build(node))

    def _undo_cell_list(
        self, delta: Delta, allowed: list[bool], old_ids: list[str | None], before: _Before
    ) -> None:
        assert self._cells is not None

        def old(index: int) -> Snap | None:
            return before.cell(index, _at(old_ids, index))

        invert_array(self._cells, delta, old, keep=allowed.__getitem__)

    def _plan_new_roots(self, plan: _Plan) -> None:
        """Roots the update created: a reader may not add any."""
        new = [name for name in self._mirror.keys() if name not in self._roots]
        for name, kind in self._probe(new).items():
            plan.note(Touch(None, _ROOT_PARTS.get(name, "document")), False)
            plan.new_roots[name] = kind
            plan.undo.append(partial(self._clear_root, name, kind))

    def _clear_root(self, name: str, kind: RootType) -> None:
        self._mirror.get(name, type=kind).clear()


# -- helpers ---------------------------------------------------------------------


def _read_ids(cells: Array) -> list[str | None]:
    return [_cell_id(cell) for cell in cells]


def _cell_id(value: object) -> str | None:
    return _normal_id(value.get("id")) if isinstance(value, Map) else None


def _normal_id(value: object) -> str | None:
    """A cell id as the saved file will say it: a Text id saves as its string."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, Text) else None


def _in_id(event: Any) -> bool:
    """Whether ``event`` changed the inside of a cell's id (a shared-type id)."""
    return len(event.path) >= 2 and event.path[1] == "id"


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _at(ids: list[str | None], index: object) -> str | None:
    return ids[index] if isinstance(index, int) and 0 <= index < len(ids) else None


def _is_rename(event: Any) -> bool:
    return _kind(event) == "map" and len(event.path) == 1 and "id" in event.keys


def _guess_type(doc: Doc, name: str) -> RootType:
    # Map entries and sequence content live apart in a root, so reading it as a Map
    # shows only map entries; a text's characters read back as a non-empty string.
    if len(doc.get(name, type=Map)) > 0:
        return Map
    if str(doc.get(name, type=Text)):
        return Text
    return Array if len(doc.get(name, type=Array)) > 0 else Text


def _kind(event: Any) -> str:
    """"text", "map" or "array": the shape of the content an event changed."""
    return _EVENT_KINDS.get(type(event), "")


def _array_deltas(events: list[Any]) -> Arrays:
    """Deltas of the arrays an update changed, by path (``()``: the root itself)."""
    return {tuple(event.path): event.delta for event in events if _kind(event) == "array"}


def _descend(
    snap: Snap | None, steps: Sequence[Any], arrays: Arrays, prefix: Sequence[Any]
) -> Snap | None:
    """The copy of what is now at ``prefix + steps``, as it was before the update.

    Array indexes in event paths count after the update; arrays the update changed
    map them back through their delta.
    """
    path = list(prefix)
    node = snap
    for step in steps:
        if node is None:
            return None
        if isinstance(step, int):
            index = old_index(arrays.get(tuple(path)), step)
            node = None if index is None else node.child(index)
        else:
            node = node.child(step)
        path.append(step)
    return node


def _undo_event(event: Any, node: Snap, keys: list[str]) -> None:
    """Revert one event in place on its target, from ``node``, the copy of the target."""
    if node.kind == "text":
        invert_text(event.target, event.delta, node.value)
    elif node.kind == "map":
        for key in keys:
            restore_key(event.target, key, node.child(key))
    else:
        invert_array(event.target, event.delta, node.child)


def _undo_keys_from_event(event: Any, keys: list[str]) -> None:
    """Revert keys of a map event from the old values it carries (plain values only).

    For a cell without a copy: only protected cells are copied, and a user may edit a
    cell yet not give it a protected id.
    """
    for key in keys:
        change = event.keys[key]
        if change.get("action") == "add":
            restore_key(event.target, key, None)
        elif not isinstance(change.get("oldValue"), Text | Array | Map):
            restore_key(event.target, key, Snap("value", change.get("oldValue")))


#: a reader's map key of up to this many bytes that the document already holds keeps
#: its name in the reader's stripped update (no new bytes), so Yjs can order the
#: reader's entry against concurrent ones everywhere as in the reader's own replica
KNOWN_NAME_BYTES = 256


def _known_name(full: bytes, name: str) -> bool:
    encoded = name.encode("utf-8")
    return len(encoded) <= KNOWN_NAME_BYTES and encoded in full


def _record(recorded: list[tuple[str, list[Any]]], name: str, events: list[Any]) -> None:
    recorded.append((name, list(events)))


def _cell_touches(events: list[Any], old_ids: list[str | None]) -> list[Touch]:
    """The cells and parts a transaction's deep events on the cells list changed."""
    new_ids = old_ids
    for event in events:
        if not event.path:
            new_ids = _ids_after(event.delta, new_ids)
    touches: list[Touch] = []
    for event in events:
        if not event.path:
            old = new = 0
            for op in event.delta:
                if "retain" in op:
                    old += op["retain"]
                    new += op["retain"]
                elif "insert" in op:
                    touches += [Touch(_at(new_ids, new + k), "insert") for k in range(len(op["insert"]))]
                    new += len(op["insert"])
                elif "delete" in op:
                    touches += [Touch(_at(old_ids, old + k), "delete") for k in range(op["delete"])]
                    old += op["delete"]
        elif len(event.path) > 1:
            touches.append(Touch(_at(new_ids, event.path[0]), str(event.path[1])))
        else:
            cell_id = _at(new_ids, event.path[0])
            for key in event.keys:
                if key == "id":
                    touches.append(Touch(_str_or_none(event.keys[key].get("oldValue")), key))
                touches.append(Touch(cell_id, key))
    return touches


def _ids_after(delta: Delta, ids: list[str | None], moved: list[str | None] | None = None
               ) -> list[str | None]:
    """The cell ids once the cells list took ``delta``; the ids of the cells it inserted
    and deleted are added to ``moved`` when one is given."""
    new: list[str | None] = []
    old = 0
    for op in delta:
        if "retain" in op:
            new += ids[old : old + op["retain"]]
            old += op["retain"]
        elif "insert" in op:
            inserted = [_cell_id(value) for value in op["insert"]]
            new += inserted
            if moved is not None:
                moved += inserted
        elif "delete" in op:
            if moved is not None:
                moved += ids[old : old + op["delete"]]
            old += op["delete"]
    return new + ids[old:]


def _keeps_ids(major: object, minor: object) -> bool:
    """Whether a notebook of this format version is saved with its cell ids (4.5+)."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (major, minor))
    return numbers and major == 4 and minor >= 5  # type: ignore[operator]


def _too_deep(batches: list[_Batch], max_depth: int, nesting: bool) -> str:
    """Why the integrated events nest content deeper than ``max_depth`` ("" if not).

    An event's path gives the depth of the container it changed; what it inserted
    adds its own nesting (prelim content integrates without events of its own), and
    only when the update carried content that nests (``nesting``: typing does not).
    """
    for batch in batches:
        for event in batch.events:
            depth = len(event.path)
            if depth >= max_depth or (
                    nesting and depth + _inserted_depth(event, max_depth - depth) > max_depth):
                return f"content nested deeper than {max_depth} levels"
    return ""


def _inserted_depth(event: Any, budget: int) -> int:
    kind = _kind(event)
    if kind == "map":
        values = [change.get("newValue") for change in event.keys.values()]
    else:
        values = [v for op in event.delta if "insert" in op
                  for v in (op["insert"] if kind == "array" else [op["insert"]])]
    return 1 + max((_nesting(value, budget) for value in values), default=0)


def _nesting(value: object, budget: int) -> int:
    """How many containers deep ``value`` goes, counting at most ``budget + 1``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Map | dict):
            children: Any = node.values()
        elif isinstance(node, Array | list):
            children = node
        elif isinstance(node, Text):
            children = ()
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > budget:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def _keys(event: Any) -> list[str]:
    return list(event.keys) if _kind(event) == "map" else []


def _adds_keys(event: Any, keys: list[str]) -> bool:
    return any(event.keys[key].get("action") == "add" for key in keys)
