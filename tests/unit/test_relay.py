"""The relay's logic, with in-memory clients and rooms: no sockets, no tornado."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Text, create_sync_message, create_update_message, handle_sync_message

from hub_rtc.guard.frames import client_receive_sync
from hub_rtc.relay import (
    EMPTY_STEP1,
    Backoff,
    Closing,
    ConnectError,
    HeldFrames,
    HeldOverflow,
    LinkClosed,
    Relay,
    RelayLimits,
    codes,
    peek,
)
from hub_rtc.relay.frames import FrameKind

AWARENESS = b"\x01\x03abc"
STEP1 = b"\x00\x00\x01\x00"
STEP2 = b"\x00\x01\x02\x00\x00"
UPDATE = b"\x00\x02\x03xyz"
FAST = RelayLimits(hold_bytes=1000, reconnect_seconds=2.0, stall_seconds=0.3, resync_seconds=0.3)


# -- in-memory ends ---------------------------------------------------------------


class FakeLink:
    """An upstream room connection whose frames the test feeds and reads."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = False

    async def send(self, frame: bytes) -> None:
        if self.closed:
            raise LinkClosed("gone")
        self.sent.append(frame)

    async def recv(self) -> bytes | None:
        if self.closed:
            return None
        return await self.incoming.get()

    def drop(self, code: int | None = None, reason: str | None = None) -> None:
        """The room went away (None: the connection just broke)."""
        self.close_code, self.close_reason = code, reason
        self.closed = True
        self.incoming.put_nowait(None)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.incoming.put_nowait(None)


class FakeClient:
    def __init__(self, slow: bool = False) -> None:
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.slow = slow
        self.pending: list[asyncio.Future[None]] = []

    def send(self, frame: bytes) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.sent.append(frame)
        if self.slow:
            self.pending.append(future)
        else:
            future.set_result(None)
        return future

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        for future in self.pending:
            if not future.done():
                future.set_exception(ConnectionError("closed"))


class Rooms:
    """Hands out links on reconnect; ``fail`` makes the next attempts fail."""

    def __init__(self) -> None:
        self.links: list[FakeLink] = []
        self.failures: list[ConnectError] = []
        self.attempts = 0

    async def connect(self) -> FakeLink:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        link = FakeLink()
        self.links.append(link)
        return link


def no_jitter() -> Backoff:
    return Backoff(first=0.01, cap=0.05, jitter=lambda: 0.0)


async def until(predicate: Callable[[], Any], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


def start(client: FakeClient, link: FakeLink, rooms: Rooms, limits: RelayLimits = FAST
          ) -> tuple[Relay, asyncio.Task[Closing]]:
    relay = Relay(client, link, rooms.connect, limits, name="test", backoff=no_jitter())
    return relay, asyncio.ensure_future(relay.run())


# -- the pieces -------------------------------------------------------------------


def test_peek_reads_the_kind_from_the_header() -> None:
    assert peek(STEP1) is FrameKind.SYNC_STEP1
    assert peek(STEP2) is FrameKind.SYNC_STEP2
    assert peek(UPDATE) is FrameKind.SYNC_UPDATE
    assert peek(AWARENESS) is FrameKind.AWARENESS
    assert peek(b"\x02\x04save\x01") is FrameKind.RAW
    assert peek(b"") is None and peek(b"\x00") is None and peek(b"\x09") is None
    assert peek(EMPTY_STEP1) is FrameKind.SYNC_STEP1


def test_an_empty_step1_asks_for_the_whole_document() -> None:
    room = Doc()
    room["t"] = text = Text()
    text += "everything"
    reply = handle_sync_message(EMPTY_STEP1[1:], room)
    replica = Doc()
    replica["t"] = Text()
    client_receive_sync(reply, replica)
    assert str(replica["t"]) == "everything"


def test_held_frames_are_bounded_by_bytes() -> None:
    held = HeldFrames(10)
    held.add(b"12345")
    held.add(b"12345")
    with pytest.raises(HeldOverflow):
        held.add(b"1")
    assert held.take() == [b"12345", b"12345"] and held.size == 0 and len(held) == 0
    held.add(b"1")
    assert len(held) == 1


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=0.1, cap=0.5, jitter=lambda: 0.0)
    assert [round(backoff.delay(), 3) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.delay() == 0.1
    jittery = Backoff(first=1.0, cap=1.0, jitter=lambda: 1.0)
    assert jittery.delay() == 0.75


def test_close_codes() -> None:
    assert codes.reconnects(None) and codes.reconnects(1001) and codes.reconnects(1006)
    assert not codes.reconnects(4403) and not codes.reconnects(4400) and not codes.reconnects(1003)
    assert codes.for_client(4403) == 4403 and codes.for_client(1003) == 1003
    assert codes.for_client(None) == codes.for_client(1006) == codes.INTERNAL_ERROR
    assert codes.for_status(403) == 4403 and codes.for_status(404) == 4404
    assert codes.for_status(400) == 4400 and codes.for_status(503) == 1013


# -- the relay --------------------------------------------------------------------


async def test_frames_go_both_ways_in_order() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    relay, task = start(client, link, rooms)
    for frame in (STEP1, UPDATE, AWARENESS):
        link.incoming.put_nowait(frame)
    for frame in (STEP2, UPDATE, AWARENESS):
        await relay.from_client(frame)
    await until(lambda: len(client.sent) == 3)
    assert client.sent == [STEP1, UPDATE, AWARENESS]
    assert link.sent == [STEP2, UPDATE, AWARENESS]
    relay.stop()
    assert (await task).code is None and link.closed and client.closed is None


class SocketLink(FakeLink):
    """A link that answers like the real socket: a future, done at once unless
    ``waiting`` (then pending until the test ends it)."""

    waiting = False

    def send(self, frame: bytes) -> asyncio.Future[None]:  # type: ignore[override]
        if self.closed:
            raise LinkClosed("gone")
        self.sent.append(frame)
        self.pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.waiting:
            self.pending.set_result(None)
        return self.pending


async def test_a_frame_the_socket_takes_at_once_costs_no_coroutine() -> None:
    client, link, rooms = FakeClient(), SocketLink(), Rooms()
    relay, task = start(client, link, rooms)
    assert relay.take(UPDATE) is None and link.sent == [UPDATE]
    link.waiting = True
    pending = relay.take(UPDATE + b"2")  # not taken yet: the client's next frame waits on it
    assert pending is not None and link.sent == [UPDATE, UPDATE + b"2"]
    waiting = asyncio.ensure_future(pending)
    await asyncio.sleep(0.02)
    assert not waiting.done()
    link.pending.set_result(None)
    await asyncio.wait_for(waiting, 1)
    relay.stop()
    await task


async def test_a_frame_whose_write_fails_as_the_room_goes_is_held_for_the_next() -> None:
    client, link, rooms = FakeClient(), SocketLink(), Rooms()
    relay, task = start(client, link, rooms)
    link.waiting = True
    pending = relay.take(UPDATE)
    assert pending is not None
    link.pending.set_exception(LinkClosed("gone"))  # the room went away under the write
    await pending
    link.drop(None)
    await until(lambda: rooms.links)
    await until(lambda: rooms.links[0].sent == [EMPTY_STEP1, UPDATE], timeout=2)  # (no answer came)
    relay.stop()
    await task


async def test_a_slow_client_holds_back_the_room_not_the_service_memory() -> None:
    client, link, rooms = FakeClient(slow=True), FakeLink(), Rooms()
    relay, task = start(client, link, rooms, RelayLimits(stall_seconds=60))
    for i in range(100):
        link.incoming.put_nowait(UPDATE + bytes([i]))
    await asyncio.sleep(0.05)
    # one frame handed to the client, the rest still unread upstream (where TCP pushes back)
    assert len(client.sent) == 1 and link.incoming.qsize() == 99
    client.pending.pop(0).set_result(None)
    await until(lambda: len(client.sent) == 2)
    assert link.incoming.qsize() == 98
    relay.stop()
    await task


async def test_a_stalled_client_is_closed_with_4408() -> None:
    client, link, rooms = FakeClient(slow=True), FakeLink(), Rooms()
    relay, task = start(client, link, rooms)
    link.incoming.put_nowait(UPDATE)
    closing = await asyncio.wait_for(task, 3)
    assert closing.code == codes.CLIENT_STALLED == client.closed[0] if client.closed else False
    assert link.closed


@pytest.mark.parametrize("code", [4403, 4400, 4404, 1003])
async def test_refusals_from_the_room_pass_through_without_reconnecting(code: int) -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    relay, task = start(client, link, rooms)
    link.drop(code, "hub_rtc: access withdrawn")
    closing = await asyncio.wait_for(task, 3)
    assert closing.code == code and client.closed == (code, "hub_rtc: access withdrawn")
    assert rooms.attempts == 0


async def test_a_lost_room_is_reconnected_and_resynced_in_order() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    relay, task = start(client, link, rooms)
    await relay.from_client(AWARENESS)
    rooms.failures.append(ConnectError(True, 1013, "not back yet"))
    link.drop(None)  # killed: no close frame
    await until(lambda: relay._link is None)
    await relay.from_client(UPDATE)  # typed while the room is away: held
    await until(lambda: rooms.links)
    fresh = rooms.links[0]
    assert rooms.attempts == 2 and relay.reconnects == 1
    # the relay asks the new room for everything it has …
    await until(lambda: fresh.sent[:1] == [EMPTY_STEP1])
    # a late answer to the old room's step 1 is not the answer: held too
    await relay.from_client(STEP2 + b"old")
    # … passes on the room's own step 1, whose answer goes up first, then what was held
    fresh.incoming.put_nowait(STEP1)
    await until(lambda: client.sent[-1:] == [STEP1])
    await relay.from_client(AWARENESS + b"!")  # still held: the answer has not come
    assert fresh.sent == [EMPTY_STEP1]
    await relay.from_client(STEP2)
    assert fresh.sent == [EMPTY_STEP1, STEP2, UPDATE, STEP2 + b"old", AWARENESS + b"!"]
    await relay.from_client(UPDATE + b"2")
    assert fresh.sent[-1] == UPDATE + b"2"
    relay.stop()
    await task
    assert client.closed is None


async def test_the_last_awareness_is_sent_again_after_a_reconnect() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    relay, task = start(client, link, rooms)
    await relay.from_client(AWARENESS)
    link.drop(1001)
    await until(lambda: rooms.links and rooms.links[0].sent)
    fresh = rooms.links[0]
    fresh.incoming.put_nowait(STEP1)
    await until(lambda: client.sent[-1:] == [STEP1])
    await relay.from_client(STEP2)
    assert fresh.sent == [EMPTY_STEP1, STEP2, AWARENESS]
    relay.stop()
    await task


async def test_held_frames_go_up_even_without_an_answer() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    relay, task = start(client, link, rooms)
    link.drop(None)
    await until(lambda: relay._link is None)
    await relay.from_client(UPDATE)
    await until(lambda: rooms.links)
    await until(lambda: rooms.links[0].sent == [EMPTY_STEP1, UPDATE], timeout=2)
    relay.stop()
    await task


async def test_holding_too_much_closes_with_1013() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    rooms.failures = [ConnectError(True, 1013, "down")] * 1000
    relay, task = start(client, link, rooms)
    link.drop(None)
    await until(lambda: relay._link is None)
    for _ in range(20):
        await relay.from_client(UPDATE + bytes(100))
    closing = await asyncio.wait_for(task, 3)
    assert closing.code == codes.TRY_AGAIN_LATER and client.closed is not None
    assert "too much" in closing.reason


async def test_a_room_gone_for_good_closes_with_1013() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    rooms.failures = [ConnectError(True, 1013, "down")] * 1000
    relay, task = start(client, link, rooms, RelayLimits(reconnect_seconds=0.3))
    link.drop(1006)
    closing = await asyncio.wait_for(task, 3)
    assert closing.code == codes.TRY_AGAIN_LATER and rooms.attempts >= 2
    assert "unreachable" in closing.reason


async def test_a_refused_reconnect_ends_with_the_refusal() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    rooms.failures = [ConnectError(True, 1013, "down"), ConnectError(False, 4403, "removed")]
    relay, task = start(client, link, rooms)
    link.drop(None)
    closing = await asyncio.wait_for(task, 3)
    assert closing == Closing(4403, "removed") and client.closed == (4403, "removed")


async def test_stopping_while_reconnecting_ends_at_once() -> None:
    client, link, rooms = FakeClient(), FakeLink(), Rooms()
    rooms.failures = [ConnectError(True, 1013, "down")] * 1000
    relay, task = start(client, link, rooms, RelayLimits(reconnect_seconds=60))
    link.drop(None)
    await until(lambda: rooms.attempts >= 1)
    relay.stop()
    closing = await asyncio.wait_for(task, 1)
    assert closing.code is None and client.closed is None


# -- a pycrdt room that loses edits when it restarts ---------------------------------


class MemoryRoom:
    """Enough of a y-sync room: step 1 on connect, answers, broadcasts updates."""

    def __init__(self, state: bytes = b"") -> None:
        self.doc = Doc()
        self.doc["source"] = Text()
        if state:
            self.doc.apply_update(state)
        self.links: list[RoomEnd] = []
        self.doc.observe(lambda event: self._broadcast(event.update))

    def _broadcast(self, update: bytes) -> None:
        for end in self.links:
            if not end.closed:
                end.incoming.put_nowait(create_update_message(update))

    async def connect(self) -> RoomEnd:
        end = RoomEnd(self)
        self.links.append(end)
        end.incoming.put_nowait(create_sync_message(self.doc))
        return end

    def text(self) -> str:
        return str(self.doc["source"])


class RoomEnd(FakeLink):
    def __init__(self, room: MemoryRoom) -> None:
        super().__init__()
        self.room = room

    async def send(self, frame: bytes) -> None:
        await super().send(frame)
        if frame[0] == 0:
            reply = handle_sync_message(frame[1:], self.room.doc)
            if reply is not None:
                self.incoming.put_nowait(reply)


class Replica:
    """A client replica: applies what the relay sends, sends its own edits."""

    def __init__(self) -> None:
        self.doc = Doc()
        self.doc["source"] = Text()
        self.relay: Relay | None = None
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._incoming = False
        self.doc.observe(lambda e: None if self._incoming else self.outbox.put_nowait(
            create_update_message(e.update)))
        self.closed: tuple[int, str] | None = None

    def send(self, frame: bytes) -> asyncio.Future[None]:
        if frame[0] == 0:
            self._incoming = True
            try:
                reply, _ = client_receive_sync(frame, self.doc)
            finally:
                self._incoming = False
            if reply is not None:
                self.outbox.put_nowait(reply)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def pump(self) -> None:
        """What tornado does: one client frame at a time into the relay."""
        while True:
            frame = await self.outbox.get()
            assert self.relay is not None
            await self.relay.from_client(frame)

    def type(self, text: str) -> None:
        self.doc["source"] += text

    def text(self) -> str:
        return str(self.doc["source"])


async def test_a_restarted_room_that_lost_edits_gets_them_back_from_the_client() -> None:
    room = MemoryRoom()
    current = {"room": room}

    async def connect() -> RoomEnd:
        return await current["room"].connect()

    replica = Replica()
    replica.outbox.put_nowait(create_sync_message(replica.doc))
    first = await room.connect()
    relay = Relay(replica, first, connect, FAST, backoff=no_jitter())
    replica.relay = relay
    task, pump = asyncio.ensure_future(relay.run()), asyncio.ensure_future(replica.pump())
    replica.type("saved ")
    await until(lambda: room.text() == "saved ")
    saved = room.doc.get_update()  # what survives the restart (on disk, in the ystore)
    replica.type("accepted-then-lost ")
    await until(lambda: room.text() == "saved accepted-then-lost ")
    # the server dies; what it had not stored is gone with it
    current["room"] = restarted = MemoryRoom(saved)
    restarted.doc["source"].insert(0, "other: ")  # someone else, directly on the new server
    first.drop(None)
    await until(lambda: relay._link is None or relay.reconnects == 1)
    replica.type("while-away")
    await until(lambda: restarted.text() == replica.text(), timeout=5)
    assert replica.text() == "other: saved accepted-then-lost while-away"
    assert relay.reconnects == 1 and replica.closed is None
    relay.stop()
    pump.cancel()
    await task
