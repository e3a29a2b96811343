"""The mirror: a plain ``pycrdt.Doc`` replica of the room's document, and what the guard
keeps in step with it.

Its observers keep the cells' ids (by index, and their positions by id) and drop the
cached copies of whatever changed, so copying what a user may not change costs
nothing while nobody changes it.  While :meth:`Mirror.integrate` runs, the same
observers record each root's deep events for the judges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pycrdt import Array, Doc, Map, Subscription, Text

from ._cells import CELLS, Ids, at, cell_id, ids_after, in_id, is_rename, normal_id, read_ids
from ._content import Delta, Snap, take
from ._scan import ID, wide_ids
from ._updates import fully_integrated
from .rights import Rights

__all__ = ["DEFAULT_ROOTS", "MIRROR_CLIENT", "Batch", "Before", "Mirror", "RootType", "Shared"]

RootType = type[Text] | type[Array[Any]] | type[Map[Any]]
Shared = Text | Array[Any] | Map[Any]

#: Roots of jupyter_ydoc documents whose type is known by name.  A plain text file's
#: ``source`` is a Text but a blob's is a Map, so ``source`` is not guessed here.
DEFAULT_ROOTS: Mapping[str, RootType] = {"cells": Array, "meta": Map, "state": Map}
#: The mirror writes its reverts as the highest client id a Yjs client can read.  When
#: a reverted map entry and the refused one it replaces follow the same entry, Yjs
#: orders them by client id and the rightmost wins, so the revert wins in every
#: replica, the refused sender's included, even where the sender's entry survives only
#: in its own replica (a reader's: everywhere else it is a bare range).
MIRROR_CLIENT = 2**53 - 1


@dataclass(slots=True)
class Batch:
    """The deep events one root emitted in the checked transaction."""

    root: str
    events: list[Any]
    #: cell ids before the transaction (cells root only)
    old_ids: Ids = field(default_factory=list)


@dataclass(slots=True)
class Before:
    """Copies of what a refused change may have to restore, taken before applying it."""

    cells: dict[str, Snap] = field(default_factory=dict)
    #: cells without a unique id, by index
    anon: dict[int, Snap] = field(default_factory=dict)
    roots: dict[str, Snap] = field(default_factory=dict)

    def cell(self, index: int | None, cell_id: str | None) -> Snap | None:
        if index is not None and index in self.anon:
            return self.anon[index]
        return self.cells.get(cell_id) if cell_id is not None else None


class Mirror:
    """The replica, its watched roots, the cells' ids, and copies of what is unchanged.

    ``hints`` types roots by name; roots it does not name are typed by looking at
    their content when the guard first needs them.
    """

    def __init__(self, initial: bytes | None, hints: Mapping[str, RootType]) -> None:
        self.doc: Doc[Shared] = Doc(client_id=MIRROR_CLIENT)
        self.hints = hints
        self.roots: dict[str, Shared] = {}
        self.cells: Array[Any] | None = None
        #: the id of each cell, by index
        self.ids: Ids = []
        #: True once the mirror may differ from the room
        self.stale = False
        #: an upper bound of the encoded mirror's size, made exact when it nears the limit
        self.size = len(initial or b"")
        self._subscriptions: list[Subscription] = []
        self._positions: dict[str, list[int]] | None = None
        self._cell_cache: dict[str, Snap] = {}
        self._root_cache: dict[str, Snap] = {}
        self._recording: list[Batch] | None = None
        #: the first clock unit of every character beyond the BMP the document holds
        #: (see :func:`._scan.splits`)
        self.highs: set[ID] = set()
        if initial:
            self.doc.apply_update(initial)
            self.highs.update(wide_ids(initial))
        for name, kind in hints.items():
            self.watch(name, kind)
        self.watch_unknown_roots()

    # -- updates ------------------------------------------------------------------

    def follow(self, update: bytes) -> None:
        """Apply an update the room already holds; stale if it does not integrate whole."""
        if self.stale:
            return
        self.size += len(update)
        try:
            self.doc.apply_update(update)
        except ValueError:
            self.stale = True
            return
        if not fully_integrated(update, self.doc.get_state()):
            self.stale = True
        self.highs.update(wide_ids(update))

    def integrate(self, update: bytes, state_before: bytes) -> list[Batch] | None:
        """Apply ``update`` recording its events; None if it cannot be (fully) applied."""
        batches: list[Batch] = []
        self._recording = batches
        try:
            self.doc.apply_update(update)
        except ValueError:
            # pycrdt decodes the whole update before integrating any of it, so an
            # undecodable update leaves the mirror as it was.
            self.stale = self.doc.get_state() != state_before
            return None
        finally:
            self._recording = None
        if not fully_integrated(update, self.doc.get_state()):
            # Part of it may be integrated and the rest waits inside the mirror for
            # dependencies the room never sent through us: only a rebuild is safe.
            self.stale = True
            return None
        return batches

    # -- copies -------------------------------------------------------------------

    def prepare(self, rights: Rights) -> Before:
        """Copies of everything ``rights`` forbids changing, from the cache when valid."""
        before = Before()
        with self.doc.transaction():  # one transaction for all the reads
            if self.cells is not None:
                self._copy_cells(self.cells, rights, before)
            if not rights.write:
                self._copy_roots(before)
        return before

    def _copy_cells(self, cells: Array[Any], rights: Rights, before: Before) -> None:
        positions = self.positions()
        for cell in rights.protected if rights.write else positions:
            places = positions.get(cell, [])
            if len(places) == 1:
                if cell not in self._cell_cache:
                    self._cell_cache[cell] = take(cells[places[0]])
                before.cells[cell] = self._cell_cache[cell]
            else:
                # A duplicated id cannot key a copy: copy each occurrence by position.
                for index in places:
                    before.anon[index] = take(cells[index])
        if not rights.write:
            for index, maybe_id in enumerate(self.ids):
                if maybe_id is None:
                    before.anon[index] = take(cells[index])

    def _copy_roots(self, before: Before) -> None:
        for name, root in self.roots.items():
            if root is self.cells:
                continue
            if name not in self._root_cache:
                self._root_cache[name] = take(root)
            before.roots[name] = self._root_cache[name]

    def positions(self) -> dict[str, list[int]]:
        """The indexes of each cell id (more than one: a duplicated id)."""
        if self._positions is None:
            positions: dict[str, list[int]] = {}
            for index, maybe_id in enumerate(self.ids):
                if maybe_id is not None:
                    positions.setdefault(maybe_id, []).append(index)
            self._positions = positions
        return self._positions

    # -- roots and their observers ------------------------------------------------

    def watch(self, name: str, kind: RootType) -> None:
        root = self.doc.get(name, type=kind)
        self.roots[name] = root
        if name == CELLS and isinstance(root, Array):
            self.cells = root
            self.ids = read_ids(root)
            self._positions = None
            self._subscriptions.append(root.observe_deep(self._on_cells))
        else:
            self._subscriptions.append(root.observe_deep(partial(self._on_root, name)))

    def watch_unknown_roots(self) -> list[str]:
        """Watch the roots nobody watches yet; their names."""
        unknown = [name for name in self.doc.keys() if name not in self.roots]
        for name, kind in self.probe(unknown).items():
            self.watch(name, kind)
        return unknown

    def probe(self, names: Sequence[str]) -> dict[str, RootType]:
        """The type of roots nobody named, read from a scratch copy of the mirror.

        Reading a root as some type fixes its type for good, so the guess is made on a
        throw-away doc.  Names the guard was told about win over guessing.
        """
        if not names:
            return {}
        scratch: Doc[Shared] = Doc()
        scratch.apply_update(self.doc.get_update())
        return {name: self.hints.get(name) or _guess_type(scratch, name) for name in names}

    def clear_root(self, name: str, kind: RootType) -> None:
        self.doc.get(name, type=kind).clear()

    def _on_cells(self, events: list[Any]) -> None:
        """Keep the id list and the cell cache in step with every change to the cells."""
        old_ids = self.ids
        ids = old_ids
        for event in events:
            if not event.path:
                ids = self._apply_list_event(event.delta, ids)
        for event in events:
            if is_rename(event):
                ids = ids if ids is not old_ids else list(ids)
                self._rename(event, ids)
            elif in_id(event) and self.cells is not None and 0 <= event.path[0] < len(ids):
                ids = ids if ids is not old_ids else list(ids)  # a Text id was edited
                self._forget([ids[event.path[0]]])
                ids[event.path[0]] = cell_id(self.cells[event.path[0]])
            elif event.path:
                self._forget([at(ids, event.path[0])])
        if ids is not old_ids:
            self.ids = ids
            self._positions = None
        if self._recording is not None:
            self._recording.append(Batch(CELLS, events, old_ids))

    def _apply_list_event(self, delta: Delta, ids: Ids) -> Ids:
        # A cell that comes or goes (a move is both) may come back different.
        moved: Ids = []
        new = ids_after(delta, ids, moved)
        self._forget(moved)
        return new

    def _forget(self, cell_ids: Ids) -> None:
        for cell in cell_ids:
            if cell is not None:
                self._cell_cache.pop(cell, None)

    def _rename(self, event: Any, ids: Ids) -> None:
        index = event.path[0]
        if 0 <= index < len(ids):
            ids[index], old = normal_id(event.keys["id"].get("newValue")), ids[index]
            self._forget([old, ids[index]])

    def _on_root(self, name: str, events: list[Any]) -> None:
        self._root_cache.pop(name, None)
        if self._recording is not None:
            self._recording.append(Batch(name, events))


def _guess_type(doc: Doc[Shared], name: str) -> RootType:
    # Map entries and sequence content live apart in a root, so reading it as a Map
    # shows only map entries; a text's characters read back as a non-empty string.
    if len(doc.get(name, type=Map)) > 0:
        return Map
    if str(doc.get(name, type=Text)):
        return Text
    return Array if len(doc.get(name, type=Array)) > 0 else Text
