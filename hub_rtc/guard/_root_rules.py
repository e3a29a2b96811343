"""Judging the roots beside the cells list: the notebook's metadata (``meta``), the
room's ``state``, a text file's ``source``, and roots an update creates.

A writer may change them all, except that a restricted writer may not move the
notebook's format version across 4.5, below which the save path drops every cell id.
A non-writer may change none: their events are reverted from the root's copy, and a
root they created is emptied.
"""

from __future__ import annotations

from functools import partial

from pycrdt import Map

from ._events import array_deltas, keys, kind
from ._mirror import Batch, Before, Mirror
from ._revert import Plan, Target, fix, undo_keys_from_event
from .rights import Rights
from .verdict import Touch, root_part

__all__ = ["FORMAT_KEYS", "plan_new_roots", "plan_root"]

#: keys of the ``meta`` root that decide how cells are saved
FORMAT_KEYS = frozenset({"nbformat", "nbformat_minor"})


def plan_root(mirror: Mirror, batch: Batch, rights: Rights, before: Before, plan: Plan) -> None:
    """Judge the events of one root other than the cells list."""
    plan.note(Touch(None, root_part(batch.root)), rights.write)
    if rights.write:
        if batch.root == "meta" and not rights.unrestricted:
            _plan_format_keys(mirror, batch, plan)
        return
    snap = before.roots.get(batch.root)
    arrays = array_deltas(batch.events)
    target = Target(batch.root, 0, snap, arrays)
    fixed = [fix(plan, target, event, keys(event)) for event in batch.events]
    if (not batch.events or not all(fixed)) and snap is not None:
        # Some change cannot be reverted event by event: restore the whole root.
        plan.put_back(batch.root, [], snap)


def plan_new_roots(mirror: Mirror, plan: Plan) -> None:
    """Roots the update created: a reader may not add any."""
    new = [name for name in mirror.doc.keys() if name not in mirror.roots]
    for name, root_type in mirror.probe(new).items():
        plan.note(Touch(None, root_part(name)), False)
        plan.new_roots[name] = root_type
        plan.undo.append(partial(mirror.clear_root, name, root_type))


def _plan_format_keys(mirror: Mirror, batch: Batch, plan: Plan) -> None:
    """The notebook's format version decides what the save path does with cell ids:
    below 4.5 ``YNotebook.get()`` drops them all, and the reload gives every cell,
    protected ones too, a random id.  Restricted users may change the version, but
    not across that line, either way."""
    meta = mirror.roots["meta"]
    if not isinstance(meta, Map):
        return
    now = {key: meta.get(key) for key in FORMAT_KEYS}
    for event in batch.events:
        if event.path or kind(event) != "map":
            continue
        changed = [key for key in event.keys if key in FORMAT_KEYS]
        was = {**now, **{key: event.keys[key].get("oldValue") for key in changed}}
        if changed and _keeps_ids(was["nbformat"], was["nbformat_minor"]) != _keeps_ids(
                now["nbformat"], now["nbformat_minor"]):
            plan.note(Touch(None, "notebook"), False)
            plan.undo.append(partial(undo_keys_from_event, event, changed))


def _keeps_ids(major: object, minor: object) -> bool:
    """Whether a notebook of this format version is saved with its cell ids (4.5+)."""
    major_n, minor_n = _number(major), _number(minor)
    return major_n is not None and minor_n is not None and major_n == 4 and minor_n >= 5


def _number(value: object) -> float | None:
    """``value`` if it is a number (a bool is not one here), else None."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None
