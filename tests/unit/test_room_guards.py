"""What the shared server keeps per room: one guard per live document room, shared by
its connections, following the room's document, rebuilt on demand and forgotten with
the room; its mirror made only when an update needs it and dropped when idle.  Real
pycrdt documents, in memory.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map
from traitlets import TraitError

from hub_rtc.guard import Limits, Rights
from hub_rtc.singleuser.app import HubRTCExtension
from hub_rtc.singleuser.roomguards import RoomGuards
from tests.unit.test_guard import EDITOR, NOTEBOOK, cell, cells, content, edit, ids


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
    guard.reset()
    assert guards.for_room(room) is guard and not guard.stale
    assert content(guard.doc) == content(room.ydoc)


def test_resetting_a_guard_without_a_mirror_makes_none() -> None:
    guards = RoomGuards()
    room = Room()
    guard = guards.for_room(room)
    guard.reset()
    assert not guard.held and guards.held() == 0


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


# -- the mirror only while the room is edited -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_mirror_until_an_update_needs_checking() -> None:
    guards = RoomGuards()
    room = Room()
    guard = guards.for_room(room)
    joined = guard.check(b"\x00\x00", EDITOR)  # a joining client that has nothing new
    assert joined.accepted and joined.forward == b"\x00\x00"
    assert not guard.held and guards.held() == 0
    client: Doc = Doc()
    client.apply_update(room.ydoc.get_update())
    assert guard.check(edit(client, lambda d: cell(d, "free")["source"].insert(0, "a")), EDITOR).accepted
    assert guard.held and guards.held() == 1


def test_an_idle_mirror_is_dropped_and_stops_following() -> None:
    clock = Clock()
    guards = RoomGuards(idle_seconds=60, clock=clock)
    room = Room()
    guard = guards.for_room(room)
    old = guard.doc
    clock.now = 59
    assert guards.sweep() == 1 and guard.held  # not idle long enough
    clock.now = 120
    assert guards.sweep() == 0 and not guard.held
    cell(room.ydoc, "free")["source"].insert(0, "later ")
    assert "later" not in str(cell(old, "free")["source"])  # no observer left on the room


def test_a_used_mirror_is_kept() -> None:
    clock = Clock()
    guards = RoomGuards(idle_seconds=60, clock=clock)
    room = Room()
    guard = guards.for_room(room)
    client: Doc = Doc()
    client.apply_update(room.ydoc.get_update())
    for minute in range(1, 5):
        clock.now = minute * 50.0
        guard.check(edit(client, lambda d: cell(d, "free")["source"].insert(0, "a")), EDITOR)
        assert guards.sweep() == 1


def test_idle_zero_keeps_every_mirror() -> None:
    clock = Clock()
    guards = RoomGuards(idle_seconds=0, clock=clock)
    room = Room()
    guard = guards.for_room(room)
    assert guard.mirror
    clock.now = 10**6
    assert guards.sweep() == 1 and guard.held


def test_a_rebuilt_mirror_holds_what_the_room_took_while_it_had_none() -> None:
    """The attack: what reached the locked cell while no mirror watched (the file, the
    owner, the store) must be protected like the rest: an editor deleting it is reverted."""
    clock = Clock()
    guards = RoomGuards(clock=clock)
    room = Room()
    guard = guards.for_room(room)
    assert guard.mirror
    clock.now = 10**4
    guards.sweep()
    cell(room.ydoc, "locked")["source"].insert(0, "# kept by the owner\n")
    editor: Doc = Doc()
    editor.apply_update(room.ydoc.get_update())
    wipe = edit(editor, lambda d: cell(d, "locked")["source"].__delitem__(slice(0, 20)))
    verdict = guard.check(wipe, EDITOR)
    assert not verdict.accepted and verdict.forward is not None
    room.ydoc.apply_update(verdict.forward)
    assert str(cell(room.ydoc, "locked")["source"]).startswith("# kept by the owner\n")
    assert content(guard.doc) == content(room.ydoc)


async def test_mirrors_are_swept_while_the_server_runs() -> None:
    guards = RoomGuards(idle_seconds=0.05)
    room = Room()
    guard = guards.for_room(room)
    assert guard.mirror  # made inside a running loop: a sweep is scheduled
    for _ in range(40):
        if not guard.held:
            break
        await asyncio.sleep(0.02)
    assert not guard.held


def test_a_negative_idle_time_is_refused_at_start_up() -> None:
    with pytest.raises(TraitError, match="guard_idle_seconds"):
        HubRTCExtension(guard_idle_seconds=-1)
    assert HubRTCExtension(guard_idle_seconds=0).guard_idle_seconds == 0
