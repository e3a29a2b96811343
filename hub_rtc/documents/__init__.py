"""Notebooks over the CRDT: read and edit a jupyter-ydoc notebook on a plain
``pycrdt.Doc``, and a y-sync client that carries one change to a room and tells
whether the room kept it, over the shared room :class:`~hub_rtc.protocol.Channel`.
Imports only pycrdt (and that protocol): no tornado, no network."""

from .notebook import (
    CELL_ID,
    CELL_TYPES,
    BadEdit,
    CellNotFound,
    Change,
    DocumentError,
    NotebookView,
    append_source,
    cell_ids,
    cell_json,
    delete_cell,
    find_cell,
    insert_cell,
    new_cell_id,
    notebook_json,
    replace_source,
)
from .sync import DocumentClient, NoAnswer, Outcome, RoomGone

__all__ = [
    "CELL_ID",
    "CELL_TYPES",
    "BadEdit",
    "CellNotFound",
    "Change",
    "DocumentClient",
    "DocumentError",
    "NoAnswer",
    "NotebookView",
    "Outcome",
    "RoomGone",
    "append_source",
    "cell_ids",
    "cell_json",
    "delete_cell",
    "find_cell",
    "insert_cell",
    "new_cell_id",
    "notebook_json",
    "replace_source",
]
