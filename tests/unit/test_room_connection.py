"""The guarded room's logic for one connection, in memory: no hub, no tornado, no network.

A *room* here is what the guard sees of jupyter-collaboration's room: a real
pycrdt document, loaded as jupyter_ydoc loads a notebook, that applies the
sync frames a connection passes on (as pycrdt-websocket's room does) and
sends every change it applies to all its clients, the sender included.  Each
test drives a :class:`RoomConnection` with the frames a client would send and
checks what reaches the room, what comes back to the sender, and how the
connection is closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map, handle_sync_message

from hub_rtc.decision.access import Access
from hub_rtc.guard import AwarenessEntry, FrameKind, Limits, decode_awareness, encode_awareness, frames
from hub_rtc.protocol import ACCESS_WITHDRAWN, BAD_REQUEST, TOO_LARGE
from hub_rtc.singleuser.connection import REFUSED_BURST, REFUSED_WINDOW, Close, RoomConnection
from hub_rtc.singleuser.presence import PresenceReporter
from hub_rtc.singleuser.roomguards import RoomGuards
from hub_rtc.singleuser.roomid import GLOBAL_AWARENESS, RoomId, parse_room_id
from hub_rtc.singleuser.tally import Tally
from tests.unit.test_guard import NOTEBOOK, cell, content, edit

FILE_ID = "0b5e7f4a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
NOTEBOOK_ROOM = parse_room_id(f"json:notebook:{FILE_ID}")
PATH = "lab1/nb.ipynb"  # from the server's root; the session's folder is lab1

IDENTITY = {"id": "p-bob", "name": "bob", "display_name": "Bob Builder", "color": "#0a0"}


def member(role: str, **extra: Any) -> Access:
    """The service's answer for a member of session s1 (rooted at lab1) with ``role``."""
    may = {"viewer": {}, "runner": {"execute": True},
           "editor": {"write": True, "execute": True}}[role]
    return Access(read=True, role=role, session_id="s1", root="lab1", identity=IDENTITY,
                  **{**may, **extra})


class Room:
    """The live room: its document, and the updates it sends to every client."""

    def __init__(self, notebook: dict[str, Any] = NOTEBOOK) -> None:
        self.ydoc: Doc = Doc()
        YNotebook(self.ydoc).set(notebook)
        self.outbox: list[bytes] = []
        self._sent = self.ydoc.observe(lambda event: self.outbox.append(event.update))

    def client(self) -> Doc:
        """A client replica, synced with the room."""
        doc: Doc = Doc()
        doc.apply_update(self.ydoc.get_update())
        return doc

    def take(self, frame: bytes | None, *replicas: Doc) -> None:
        """Apply a frame passed on to the room, and deliver what it sends to ``replicas``."""
        if frame is not None and frame[0] == 0:
            handle_sync_message(frame[1:], self.ydoc)
        for update in self.outbox:
            for replica in replicas:
                replica.apply_update(update)
        self.outbox.clear()


class World:
    """A room, its guards, and the server's tally and presence, shared by connections."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.room = Room()
        self.guards = RoomGuards(limits)
        self.tally = Tally()
        self.presence = PresenceReporter()
        self.now = 0.0

    def connect(self, access: Access, name: str = "bob", room_id: RoomId = NOTEBOOK_ROOM,
                path: str | None = PATH) -> RoomConnection:
        conn = RoomConnection(room_id, path, name, tally=self.tally, presence=self.presence,
                              log=logging.getLogger("test"), clock=lambda: self.now)
        conn.set_access(access)
        conn.follow(self.guards, self.room)
        return conn

    def counts(self) -> dict[tuple[str, str, str, str], int]:
        """(user, kind, path, cell) -> count, of everything tallied so far."""
        return {(e["user"], e["kind"], e["path"], e.get("cell_id", "")): e["count"]
                for events in self.tally.drain().values() for e in events}


def update_frame(doc: Doc, change: Callable[[Doc], None]) -> bytes:
    """The SYNC_UPDATE frame a client sends for ``change`` to its replica."""
    return frames.sync_frame(FrameKind.SYNC_UPDATE, edit(doc, change))


def type_into(cell_id: str, text: str) -> Callable[[Doc], None]:
    return lambda doc: cell(doc, cell_id)["source"].insert(0, text)


def source(doc: Doc, cell_id: str) -> str:
    return str(cell(doc, cell_id)["source"])


# -- document updates ----------------------------------------------------------------


def test_a_viewers_update_is_refused_and_answered_with_the_revert() -> None:
    world = World()
    viewer, other = world.room.client(), world.room.client()
    before = content(world.room.ydoc)
    conn = world.connect(member("viewer"))
    frame = update_frame(viewer, type_into("free", "SECRET "))
    assert source(viewer, "free").startswith("SECRET")
    forward, close = conn.receive(frame)
    assert close is None
    assert forward is not None and forward != frame and b"SECRET" not in forward
    world.room.take(forward, viewer, other)
    # the sender got the revert through the room, like everyone else: all back in line
    assert content(viewer) == content(other) == content(world.room.ydoc) == before
    assert world.counts() == {("bob", "refused", "nb.ipynb", "free"): 1}


def test_an_editors_update_is_passed_on_as_it_came() -> None:
    world = World()
    editor, other = world.room.client(), world.room.client()
    conn = world.connect(member("editor"))
    frame = update_frame(editor, type_into("free", "# mine\n"))
    forward, close = conn.receive(frame)
    assert close is None and forward is frame  # the same bytes: not even copied
    world.room.take(forward, editor, other)
    assert source(other, "free") == source(world.room.ydoc, "free") == "# mine\nx = 1\nprint(x)"
    assert world.counts() == {("bob", "edit", "nb.ipynb", "free"): 1}


def test_an_edit_of_a_locked_cell_is_reverted_and_the_rest_kept() -> None:
    world = World()
    editor, other = world.room.client(), world.room.client()
    conn = world.connect(member("editor", protected=frozenset({"locked"})))
    locked = source(world.room.ydoc, "locked")

    def both(doc: Doc) -> None:
        with doc.transaction():
            type_into("free", "# ok\n")(doc)
            type_into("locked", "SECRET ")(doc)

    forward, close = conn.receive(update_frame(editor, both))
    assert close is None and forward is not None
    world.room.take(forward, editor, other)
    for doc in (editor, other, world.room.ydoc):
        assert source(doc, "locked") == locked
        assert source(doc, "free").startswith("# ok\n")
    assert world.counts() == {("bob", "edit", "nb.ipynb", "free"): 1,
                              ("bob", "refused", "nb.ipynb", "locked"): 1}


def test_a_runner_writes_results_not_counted_as_a_second_run() -> None:
    """The run was counted on the runner's kernel socket; the count they write is its echo."""
    world = World()
    runner = world.room.client()
    conn = world.connect(member("runner"))
    forward, close = conn.receive(update_frame(runner, lambda d: cell(d, "free").__setitem__(
        "execution_count", 7)))
    assert close is None and forward is not None
    world.room.take(forward)
    assert cell(world.room.ydoc, "free")["execution_count"] == 7
    assert world.counts() == {}


@pytest.mark.parametrize("frame", [
    b"\x00\x02\x05abc",  # an update shorter than it says
    b"\x00\x07\x00",  # no such sync step
    b"\x00\x02\x01a\xff",  # bytes after the payload
])
def test_a_malformed_sync_frame_closes_the_connection_with_4400(frame: bytes) -> None:
    world = World()
    conn = world.connect(member("editor"))
    forward, close = conn.receive(frame)
    assert forward is None
    assert close is not None and close.code == BAD_REQUEST == 4400
    assert close.reason.startswith("hub_rtc: malformed sync message (")


def test_other_unreadable_frames_are_dropped_without_closing() -> None:
    world = World()
    conn = world.connect(member("editor"))
    assert conn.receive(b"\x09\x01") == (None, None)
    assert conn.receive(b"\x01\x05ab") == (None, None)  # a truncated awareness frame


def test_an_update_over_the_limit_closes_with_4413_and_changes_nothing() -> None:
    world = World(Limits(max_update=100))
    editor = world.room.client()
    before = content(world.room.ydoc)
    conn = world.connect(member("editor"))
    forward, close = conn.receive(update_frame(editor, type_into("free", "x" * 200)))
    assert forward is None
    assert close is not None and close.code == TOO_LARGE == 4413
    assert close.reason.startswith("hub_rtc: ") and "exceeds 100" in close.reason
    assert len(close.reason) <= 120
    world.room.take(forward)
    assert content(world.room.ydoc) == before


def test_too_deep_an_update_closes_with_4413_and_the_shared_guard_is_rebuilt() -> None:
    world = World(Limits(max_depth=4))
    editor = world.room.client()
    conn = world.connect(member("editor"))

    def nest(doc: Doc) -> None:
        with doc.transaction():
            level = cell(doc, "free")["metadata"]
            for _ in range(6):
                level["deeper"] = Map()
                level = level["deeper"]

    forward, close = conn.receive(update_frame(editor, nest))
    assert forward is None and close is not None and close.code == TOO_LARGE
    assert "nested deeper than 4" in close.reason
    guard = world.guards.for_room(world.room)
    assert not guard.stale  # rebuilt from the room, for every other connection
    assert content(guard.doc) == content(world.room.ydoc)


def test_an_update_out_of_order_closes_with_4400_and_the_guard_recovers() -> None:
    world = World()
    editor = world.room.client()
    conn = world.connect(member("editor"))
    first = update_frame(editor, type_into("free", "a"))
    second = update_frame(editor, type_into("free", "b"))
    forward, close = conn.receive(second)
    assert forward is None
    assert close == Close(BAD_REQUEST, "hub_rtc: update out of order; reconnecting")
    # the client reconnects and sends both, in order: both go through
    again = world.connect(member("editor"))
    for frame in (first, second):
        forward, close = again.receive(frame)
        assert forward is frame and close is None
        world.room.take(forward)
    assert source(world.room.ydoc, "free") == "bax = 1\nprint(x)"


def test_a_guard_that_lost_step_with_the_room_is_rebuilt_before_it_judges() -> None:
    """The mirror failed to follow something of the room's own (seen on a loaded CI
    machine after a room loaded from the store and then the file): the next client's
    valid update is judged against the room as it is, not refused for the mirror's gap."""
    world = World()
    editor = world.room.client()
    conn = world.connect(member("editor"))
    guard = world.guards.for_room(world.room)
    elsewhere = world.room.client()
    edit(elsewhere, type_into("free", "a"))
    gap = edit(elsewhere, type_into("free", "b"))  # depends on "a", which the mirror lacks
    guard.mirror.follow(gap)
    assert guard.stale
    frame = update_frame(editor, type_into("notes", "c"))
    forward, close = conn.receive(frame)
    assert close is None and forward is frame
    world.room.take(forward)
    assert not guard.stale and content(guard.doc) == content(world.room.ydoc)


def test_a_sync_step2_is_checked_like_an_update() -> None:
    world = World()
    offline = world.room.client()
    before = content(world.room.ydoc)
    type_into("free", "SECRET ")(offline)
    step2 = frames.sync_frame(FrameKind.SYNC_STEP2, offline.get_update(world.room.ydoc.get_state()))
    conn = world.connect(member("viewer"))
    forward, close = conn.receive(step2)
    assert close is None and forward is not None and forward[:2] == b"\x00\x01"
    world.room.take(forward, offline)
    assert content(offline) == content(world.room.ydoc) == before


def test_frames_in_a_room_that_is_no_document_pass_as_they_came() -> None:
    world = World()
    conn = world.connect(member("viewer"), room_id=RoomId("awareness", GLOBAL_AWARENESS), path=None)
    frame = update_frame(world.room.client(), type_into("free", "x"))
    assert conn.receive(frame) == (frame, None)
    conn.joined()
    assert world.counts() == {} and world.presence.report(0) == {}


def test_a_sync_step1_passes_as_it_came() -> None:
    world = World()
    conn = world.connect(member("viewer"))
    step1 = b"\x00\x00\x01\x00"
    assert conn.receive(step1) == (step1, None)


# -- refusal bursts ------------------------------------------------------------------


def refuse_many(world: World, conn: RoomConnection, times: int, every: float) -> list[Close | None]:
    """``times`` refused edits from a viewer, ``every`` seconds apart: how each was answered."""
    viewer = world.room.client()
    closes = []
    for _ in range(times):
        forward, close = conn.receive(update_frame(viewer, type_into("free", "SECRET")))
        assert forward is not None  # the revert reaches the room: the sender needs it
        world.room.take(forward, viewer)
        closes.append(close)
        world.now += every
    return closes


def test_a_burst_of_refused_updates_closes_the_connection() -> None:
    world = World()
    conn = world.connect(member("viewer"))
    closes = refuse_many(world, conn, REFUSED_BURST + 1, REFUSED_WINDOW / (2 * REFUSED_BURST))
    assert closes[:-1] == [None] * REFUSED_BURST
    assert closes[-1] == Close(BAD_REQUEST, "hub_rtc: too many refused updates")


def test_refusals_spread_over_time_are_no_burst() -> None:
    world = World()
    conn = world.connect(member("viewer"))
    closes = refuse_many(world, conn, REFUSED_BURST + 20, 2 * REFUSED_WINDOW / REFUSED_BURST)
    assert closes == [None] * (REFUSED_BURST + 20)


def test_accepted_updates_do_not_count_towards_a_burst() -> None:
    world = World()
    editor = world.room.client()
    conn = world.connect(member("editor"))
    for _ in range(REFUSED_BURST + 1):
        forward, close = conn.receive(update_frame(editor, type_into("free", "x")))
        assert close is None
        world.room.take(forward, editor)


# -- awareness -----------------------------------------------------------------------


def awareness(*entries: tuple[int, Any]) -> bytes:
    return frames.awareness_frame(encode_awareness(AwarenessEntry(client, 1, state)
                                                   for client, state in entries))


def states(frame: bytes | None) -> list[tuple[int, Any]]:
    assert frame is not None
    return [(e.client_id, e.state) for e in decode_awareness(frames.awareness_payload(frame))]


def test_awareness_carries_the_connections_own_identity() -> None:
    world = World()
    conn = world.connect(member("editor"))
    claimed = {"username": "p-alice", "name": "alice", "display_name": "Alice", "color": "#f00"}
    forward, close = conn.receive(awareness((11, {"user": claimed, "cursors": [1]})))
    assert close is None
    [(client, state)] = states(forward)
    assert client == 11 and state["cursors"] == [1]
    assert state["user"] == {"username": "p-bob", "name": "bob", "display_name": "Bob Builder",
                             "initials": "B", "color": "#0a0", "avatar_url": None}


def test_awareness_is_pinned_to_the_first_client_id() -> None:
    world = World()
    conn = world.connect(member("editor"))
    conn.receive(awareness((11, {"cursors": []})))
    assert conn.receive(awareness((12, {"cursors": []}))) == (None, None)  # another client's
    assert conn.receive(awareness((12, None))) == (None, None)  # nor may it log them out
    assert [c for c, _ in states(conn.receive(awareness((11, None)))[0])] == [11]


def test_awareness_in_the_global_room_too() -> None:
    world = World()
    conn = world.connect(member("viewer"), room_id=RoomId("awareness", GLOBAL_AWARENESS), path=None)
    [(_, state)] = states(conn.receive(awareness((5, {"user": {"name": "alice"}})))[0])
    assert state["user"]["name"] == "bob"


# -- save, access, presence ----------------------------------------------------------

SAVE = b"\x02\x04save\x07"


def test_a_save_is_performed_only_for_writers() -> None:
    world = World()
    viewer, editor = world.connect(member("viewer"), "vic"), world.connect(member("editor"))
    assert viewer.receive(SAVE) == (None, None)
    assert editor.receive(SAVE) == (SAVE, None)
    assert world.counts() == {("vic", "refused", "nb.ipynb", ""): 1, ("bob", "save", "nb.ipynb", ""): 1}


def test_a_recheck_that_withdraws_access_closes_with_4403() -> None:
    world = World()
    conn = world.connect(member("editor"))
    assert conn.recheck(member("editor")) is None
    assert conn.recheck(Access.none("removed from the session")) == Close(ACCESS_WITHDRAWN,
                                                                          "hub_rtc: access withdrawn")
    assert not conn.access.read


def test_narrowed_rights_apply_from_the_next_frame() -> None:
    world = World()
    editor = world.room.client()
    conn = world.connect(member("editor"))
    assert conn.recheck(member("viewer")) is None
    forward, _ = conn.receive(update_frame(editor, type_into("free", "SECRET")))
    assert forward is not None and b"SECRET" not in forward


def test_cells_are_enforced_only_in_a_notebook_room() -> None:
    world = World()
    as_text = RoomId("document", f"text:file:{FILE_ID}", "text", "file", FILE_ID)
    conn = world.connect(member("editor", protected=frozenset({"locked"})), room_id=as_text)
    assert conn.access.read and not conn.access.write
    assert "edit it as a notebook" in conn.access.reason
    assert world.connect(member("editor", protected=frozenset({"locked"}))).access.write


def test_presence_and_joins_are_counted_per_user_and_session() -> None:
    world = World()
    first, second = world.connect(member("editor")), world.connect(member("editor"))
    first.joined()
    second.joined()
    assert world.presence.report(0) == {"s1": {"bob": 2}}  # two tabs
    first.left()
    assert world.presence.report(1) == {"s1": {"bob": 1}}
    second.left()
    assert world.presence.report(2) == {"s1": {}}
    assert world.counts() == {("bob", "join", "nb.ipynb", ""): 2, ("bob", "leave", "nb.ipynb", ""): 2}


def test_nothing_is_counted_outside_a_session() -> None:
    world = World()
    owner = Access(read=True, write=True, role="owner")  # the server's owner, in no session
    conn = world.connect(owner, "owner")
    conn.joined()
    conn.receive(update_frame(world.room.client(), type_into("free", "x")))
    conn.left()
    assert world.counts() == {} and world.presence.report(0) == {}
