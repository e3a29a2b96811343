"""The cells list: cell ids as the saved file will say them, and walks of its deltas.

A deep event below the cells list has the cell's index *after* the transaction as
``path[0]``; one with an empty path changed the list itself, and its delta is read
against the ids before (:func:`ids_after`).
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Map, Text

from ._content import Delta
from ._events import kind
from .verdict import Touch

__all__ = [
    "CELLS", "Ids", "at", "cell_id", "cell_touches", "ids_after", "in_id", "is_rename",
    "normal_id", "read_ids", "str_or_none",
]

CELLS = "cells"
#: the id of each cell, by index (None: the cell has none, or is not a map)
Ids = list[str | None]


def read_ids(cells: Array[Any]) -> Ids:
    return [cell_id(cell) for cell in cells]


def cell_id(value: object) -> str | None:
    return normal_id(value.get("id")) if isinstance(value, Map) else None


def normal_id(value: object) -> str | None:
    """A cell id as the saved file will say it: a Text id saves as its string."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, Text) else None


def in_id(event: Any) -> bool:
    """Whether ``event`` changed the inside of a cell's id (a shared-type id)."""
    return len(event.path) >= 2 and event.path[1] == "id"


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def at(ids: Ids, index: object) -> str | None:
    """The id at ``index`` (None out of range, or for a path step that is no index)."""
    return ids[index] if isinstance(index, int) and 0 <= index < len(ids) else None


def is_rename(event: Any) -> bool:
    """Whether ``event`` set or removed a cell's ``id`` key."""
    return kind(event) == "map" and len(event.path) == 1 and "id" in event.keys


def cell_touches(events: list[Any], old_ids: Ids) -> list[Touch]:
    """The cells and parts a transaction's deep events on the cells list changed."""
    new_ids = old_ids
    for event in events:
        if not event.path:
            new_ids = ids_after(event.delta, new_ids)
    touches: list[Touch] = []
    for event in events:
        if not event.path:
            old = new = 0
            for op in event.delta:
                if "retain" in op:
                    old += op["retain"]
                    new += op["retain"]
                elif "insert" in op:
                    touches += [Touch(at(new_ids, new + k), "insert") for k in range(len(op["insert"]))]
                    new += len(op["insert"])
                elif "delete" in op:
                    touches += [Touch(at(old_ids, old + k), "delete") for k in range(op["delete"])]
                    old += op["delete"]
        elif len(event.path) > 1:
            touches.append(Touch(at(new_ids, event.path[0]), str(event.path[1])))
        else:
            cell = at(new_ids, event.path[0])
            for key in event.keys:
                if key == "id":
                    touches.append(Touch(str_or_none(event.keys[key].get("oldValue")), key))
                touches.append(Touch(cell, key))
    return touches


def ids_after(delta: Delta, ids: Ids, moved: Ids | None = None) -> Ids:
    """The cell ids once the cells list took ``delta``; the ids of the cells it inserted
    and deleted are added to ``moved`` when one is given."""
    new: Ids = []
    old = 0
    for op in delta:
        if "retain" in op:
            new += ids[old : old + op["retain"]]
            old += op["retain"]
        elif "insert" in op:
            inserted = [cell_id(value) for value in op["insert"]]
            new += inserted
            if moved is not None:
                moved += inserted
        elif "delete" in op:
            if moved is not None:
                moved += ids[old : old + op["delete"]]
            old += op["delete"]
    return new + ids[old:]
