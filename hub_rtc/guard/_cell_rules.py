"""Judging the cells list: whole cells inserted and deleted, changes inside one cell,
and cell ids, which say whose a cell is.

Each change is noted on the :class:`~._revert.Plan` as allowed or refused, and a
refused one gets the edit that reverts it.  Ids are judged as the saved file will say
them: an id a restricted user gives a cell must be a plain string no other cell has,
or the save path could hand a protected cell's id to another cell on disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from pycrdt import Map

from ._cells import CELLS, Ids, at, in_id, is_rename
from ._content import Delta, invert_text, old_index
from ._events import Arrays, array_deltas, keys, kind
from ._mirror import Batch, Before, Mirror
from ._revert import Plan, Target, fix, undo_cell_list, undo_keys_from_event
from .rights import Rights
from .verdict import Touch

__all__ = ["plan_cells"]


def plan_cells(mirror: Mirror, batch: Batch, rights: Rights, before: Before, plan: Plan) -> None:
    """Judge the events of the cells list, ``mirror.cells``."""
    arrays = array_deltas(batch.events)
    # (from the ids before: an event's old value may be a deleted type, unreadable)
    renames = {e.path[0]: at(batch.old_ids, old_index(arrays.get(()), e.path[0]))
               for e in batch.events if is_rename(e)}
    for event in batch.events:
        if not event.path:
            _plan_cell_list(mirror, event.delta, batch.old_ids, rights, before, plan)
        elif in_id(event):
            _plan_id_edit(mirror, event, batch.old_ids, arrays, rights, plan)
        else:
            _plan_cell_change(mirror, event, renames, arrays, rights, before, plan)


def _plan_id_edit(
    mirror: Mirror, event: Any, old_ids: Ids, arrays: Arrays, rights: Rights, plan: Plan
) -> None:
    """An edit inside a cell's id that is a shared type: the save path reads a Text
    id as its string, so this renames the cell.  Only unrestricted users may."""
    index = event.path[0]
    old = at(old_ids, old_index(arrays.get(()), index))
    ok = rights.unrestricted
    plan.note(Touch(old, "id"), ok)
    plan.note(Touch(at(mirror.ids, index), "id"), ok)
    if not ok and old is not None and kind(event) == "text" and len(event.path) == 2:
        plan.undo.append(partial(invert_text, event.target, event.delta, old))


def _plan_cell_list(
    mirror: Mirror, delta: Delta, old_ids: Ids, rights: Rights, before: Before, plan: Plan
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
            for value, cid in zip(op["insert"], mirror.ids[new : new + count], strict=True):
                allowed.append(_judge_insert(mirror, rights, plan, value, cid))
            new += count
        elif "delete" in op:
            gone = [at(old_ids, old + k) for k in range(op["delete"])]
            allowed += [_judge(rights, plan, cid, "delete") for cid in gone]
            old += op["delete"]
    if not all(allowed):
        assert mirror.cells is not None  # (only the cells list's events come here)
        plan.late.append(partial(undo_cell_list, mirror.cells, delta, allowed, old_ids, before))


def _judge(rights: Rights, plan: Plan, cell_id: str | None, part: str) -> bool:
    ok = rights.may_change(cell_id, part)
    plan.note(Touch(cell_id, part), ok)
    return ok


def _judge_insert(mirror: Mirror, rights: Rights, plan: Plan, value: object, cell_id: str | None) -> bool:
    ok = rights.may_change(cell_id, "insert")
    if ok and not rights.unrestricted:
        ok = isinstance(value, Map) and _sound_id(mirror, value.get("id"), "add")
    plan.note(Touch(cell_id, "insert"), ok)
    return ok


def _sound_id(mirror: Mirror, value: object, action: object) -> bool:
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
    return len(mirror.positions().get(value, ())) == 1


def _plan_cell_change(
    mirror: Mirror,
    event: Any,
    renames: dict[int, str | None],
    arrays: Arrays,
    rights: Rights,
    before: Before,
    plan: Plan,
) -> None:
    """A change inside one cell: its keys (path [i]) or deeper (path [i, key, ...])."""
    index = event.path[0]
    new_id = at(mirror.ids, index)
    cell_id = renames.get(index, new_id)  # the cell as the user found it
    if len(event.path) > 1:
        if _judge(rights, plan, cell_id, str(event.path[1])):
            return
        refused = keys(event)
    else:
        refused = [key for key in event.keys
                   if not _judge_key(mirror, rights, plan, cell_id, new_id, key, event.keys[key])]
        if not refused:
            return
    snap = before.cell(old_index(arrays.get(()), index), cell_id)
    if fix(plan, Target(CELLS, 1, snap, arrays), event, refused):
        return
    if len(event.path) == 1:
        plan.undo.append(partial(undo_keys_from_event, event, refused))
    elif snap is not None:
        # The old content at that path is unknown (an array both restructured and
        # edited inside): restore the cell's whole top-level key instead.
        plan.put_back(CELLS, event.path[:2], snap.child(event.path[1]))


def _judge_key(
    mirror: Mirror,
    rights: Rights,
    plan: Plan,
    cell_id: str | None,
    new_id: str | None,
    key: str,
    change: Mapping[str, Any],
) -> bool:
    if key != "id":
        return _judge(rights, plan, cell_id, key)
    # Renaming touches both ids: a cell may neither lose nor take a protected id.
    ok = rights.may_edit(cell_id) and rights.may_edit(new_id)
    if ok and not rights.unrestricted:
        ok = _sound_id(mirror, change.get("newValue"), change.get("action"))
    plan.note(Touch(cell_id, key), ok)
    plan.note(Touch(new_id, key), ok)
    return ok
