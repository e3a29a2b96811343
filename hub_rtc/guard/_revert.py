"""The plan of a checked update (what it touched, what was refused) and the edits that
revert the refused part on the mirror.

A refused event is reverted in place where the copy taken before it says what was
there (:func:`fix`); where it cannot be, the whole value is put back from its copy.
All of it runs in one transaction of the mirror (:func:`revert`), so the refused
items are deleted and their content garbage-collected before anyone encodes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pycrdt import Array, Map, Text

from ._cells import Ids, at
from ._content import Delta, Snap, build, invert_array, invert_text, old_index, restore_in_place, restore_key
from ._events import Arrays, adds_keys, kind
from ._mirror import Before, Mirror, RootType, Shared
from .verdict import Touch

__all__ = ["Plan", "Target", "fix", "revert", "undo_cell_list", "undo_keys_from_event"]


@dataclass(slots=True)
class Plan:
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

    def put_back(self, root: str, path: Sequence[Any], node: Snap | None) -> None:
        """Replace what is at ``path`` below ``root`` with ``node`` (None: nothing)."""
        self.replace.setdefault((root, *path), node)


@dataclass(frozen=True, slots=True)
class Target:
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


def fix(plan: Plan, target: Target, event: Any, keys: list[str]) -> bool:
    """Plan the revert of one refused event from the copy; False if it has none.

    Yjs keeps the key of a deleted map entry in the document, so a refused *new*
    key would survive as a tombstone (so would one set and deleted in the same
    update, seen as a change without keys); replacing the whole map from the copy
    drops it along with the map (impossible for a root map, whose tombstones remain).
    """
    path = list(event.path)
    node = target.copy_at(path)
    if node is None or node.kind != kind(event):
        return False
    if node.kind == "map" and path and (adds_keys(event, keys) or not event.keys):
        where = target.stable(path)
        plan.put_back(target.root, where, target.copy_at(where))
    else:
        plan.undo.append(partial(_undo_event, event, node, keys))
    return True


def revert(mirror: Mirror, plan: Plan) -> None:
    """Run ``plan``'s edits on the mirror, in a transaction of their own: when it
    commits, the refused items are deleted and their content garbage-collected before
    anyone encodes the mirror."""
    with mirror.doc.transaction():
        for undo in plan.undo:
            undo()
        _replace_all(mirror.roots, plan.replace)
        for undo in plan.late:
            undo()
    for name, root_type in plan.new_roots.items():
        mirror.watch(name, root_type)


def undo_cell_list(cells: Array[Any], delta: Delta, allowed: list[bool], old_ids: Ids,
                   before: Before) -> None:
    """Undo the refused inserts and deletes of the cells list's ``delta``."""

    def old(index: int) -> Snap | None:
        return before.cell(index, at(old_ids, index))

    invert_array(cells, delta, old, keep=allowed.__getitem__)


def undo_keys_from_event(event: Any, keys: list[str]) -> None:
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


def _undo_event(event: Any, node: Snap, keys: list[str]) -> None:
    """Revert one event in place on its target, from ``node``, the copy of the target."""
    if node.kind == "text":
        invert_text(event.target, event.delta, node.value)
    elif node.kind == "map":
        for key in keys:
            restore_key(event.target, key, node.child(key))
    else:
        invert_array(event.target, event.delta, node.child)


def _replace_all(roots: dict[str, Shared], replace: dict[tuple[Any, ...], Snap | None]) -> None:
    """Run planned replacements, outermost first; what lies inside one is covered."""
    done: list[tuple[Any, ...]] = []
    for where in sorted(replace, key=len):
        if not any(where[: len(outer)] == outer for outer in done):
            _replace_at(roots[where[0]], list(where[1:]), replace[where])
            done.append(where)


def _replace_at(root: Shared, path: list[Any], node: Snap | None) -> None:
    """Put a copy of ``node`` at ``path`` (None: nothing there), replacing what is there."""
    if not path:
        if node is not None:
            restore_in_place(root, node)
        return
    parent: Any = root
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if isinstance(last, str):
        restore_key(parent, last, node)
    elif node is not None:
        del parent[last]
        parent.insert(last, build(node))


def _descend(snap: Snap | None, steps: Sequence[Any], arrays: Arrays, prefix: Sequence[Any]
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
