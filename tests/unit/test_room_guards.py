"""What the shared server keeps per room: one guard per live document room, shared by
its connections, following the room's document, rebuilt on demand and forgotten with
the room.  Real pycrdt documents, in memory.
"""

from __future__ import annotations

import gc
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map

from hub_rtc.guard import Limits, Rights
from hub_rtc.singleuser.connection import RoomGuards
from tests.unit.test_guard import NOTEBOOK, cell, cells, content, edit, ids


class Room:
    """A live room as the guard sees it: its document."""

    def __init__(self, notebook: dict[str, Any] | None = NOTEBOOK) -> None:
        self.ydoc: Doc = Doc()
        if notebook is not None:
            YNotebook(self.ydoc).set(notebook)


def test_the_connections_of_one_room_share_its_guard() -> None:
    guards = RoomGuards()
    room, other = Room(), Room()
    assert guards.for_room(room) is guards.for_room(room)
    assert guards.for_room(other) is not guards.for_room(room)
    assert len(guards) == 2


def test_a_guard_starts_from_what_the_room_holds_and_with_the_limits() -> None:
    limits = Limits(max_update=1000)
    guards = RoomGuards(limits)
    room = Room()
    guard = guards.for_room(room)
    assert content(guard.doc) == content(room.ydoc)
    assert guard.limits is limits


def test_the_guard_follows_every_change_the_room_accepts() -> None:
    guards = RoomGuards()
    room = Room(notebook=None)  # a room whose file loads after its first connection
    guard = guards.for_room(room)
    YNotebook(room.ydoc).set(NOTEBOOK)  # the file on disk, the ystore, other clients
    assert content(guard.doc) == content(room.ydoc)
    client: Doc = Doc()
    client.apply_update(room.ydoc.get_update())
    update = edit(client, lambda d: cell(d, "free")["source"].insert(0, "# later\n"))
    assert guard.check(update, Rights.full()).accepted  # it builds on what the guard followed


def test_reset_rebuilds_a_stale_guard_from_the_room() -> None:
    guards = RoomGuards(Limits(max_depth=4))
    room = Room()
    guard = guards.for_room(room)
    client: Doc = Doc()
    client.apply_update(room.ydoc.get_update())

    def nest(doc: Doc) -> None:
        with doc.transaction():
            level = cell(doc, "free")["metadata"]
            for _ in range(6):
                level["deeper"] = Map()
                level = level["deeper"]

    assert guard.check(edit(client, nest), Rights.full()).pending
    assert guard.stale  # the mirror holds what the room never got
    guards.reset(room)
    assert guards.for_room(room) is guard and not guard.stale
    assert content(guard.doc) == content(room.ydoc)


def test_resetting_a_room_without_a_guard_makes_none() -> None:
    guards = RoomGuards()
    room = Room()
    guards.reset(room)
    assert len(guards) == 0


def test_a_rooms_guard_is_forgotten_with_the_room() -> None:
    guards = RoomGuards()
    kept, dropped = Room(), Room()
    guards.for_room(kept)
    guards.for_room(dropped)
    del dropped
    gc.collect()
    assert len(guards) == 1
    cells(kept.ydoc).append(Map({"id": "new"}))  # the kept room's guard still follows
    assert ids(guards.for_room(kept).doc)[-1] == "new"
