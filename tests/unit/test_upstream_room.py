"""The upstream room websocket pushing frames to the relay: against a real tornado
websocket server in this process (the adapter's whole point is how it sits on
tornado's protocol, so a fake socket would test nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler, websocket_connect

from hub_rtc.adapters.upstream import RoomClosed, UpstreamRoom


class Room(WebSocketHandler):
    """Sends what the test puts in ``outbox`` (None: close with 4403)."""

    def open(self, *args: Any) -> None:
        self.settings["opened"].set_result(self)

    async def send_all(self, frames: list[bytes | str | None]) -> None:
        for frame in frames:
            if frame is None:
                self.close(4403, "withdrawn")
                return
            await self.write_message(frame, binary=isinstance(frame, bytes))


class Received(WebSocketHandler):
    """Keeps what the client sends, in ``received``."""

    def open(self, *args: Any) -> None:
        self.received: list[bytes | str] = []
        self.settings["opened"].set_result(self)

    def on_message(self, message: bytes | str) -> None:
        self.received.append(message)


class Served:
    def __init__(self, port: int, opened: asyncio.Future[Room]) -> None:
        self.port = port
        self.opened = opened

    async def connect(self, path: str = "/room") -> tuple[UpstreamRoom, Any]:
        ws = await websocket_connect(f"ws://127.0.0.1:{self.port}{path}")
        return UpstreamRoom(ws, "json:notebook:f", "f", "s"), await self.opened


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    opened: asyncio.Future[Room] = asyncio.get_running_loop().create_future()
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(Application([("/room", Room), ("/received", Received)], opened=opened))
    server.add_sockets(sockets)
    yield Served(sockets[0].getsockname()[1], opened)
    server.stop()


async def until(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.005)


async def test_frames_from_before_and_after_listening_arrive_once_in_order(served: Served) -> None:
    link, room = await served.connect()
    early = [b"\x00\x00early%d" % i for i in range(3)]
    await room.send_all(list(early))
    await asyncio.sleep(0.05)  # they are read (one queued, one waiting to be) before anyone listens
    got: list[bytes] = []

    def take(frame: bytes) -> None:
        got.append(frame)
        if len(got) == 3:  # more frames while the early ones are still being handed on
            asyncio.ensure_future(room.send_all([b"\x00\x02late%d" % i for i in range(50)]))

    listening = asyncio.ensure_future(link.listen(take))
    await until(lambda: len(got) == 53)
    assert got == early + [b"\x00\x02late%d" % i for i in range(50)]
    await room.send_all(["text", None])  # a text message is passed on as bytes; then the close
    await asyncio.wait_for(listening, 3)
    assert got[-1] == b"text"
    assert (link.close_code, link.close_reason) == (4403, "withdrawn")


async def test_the_next_frame_waits_until_the_last_is_taken(served: Served) -> None:
    link, room = await served.connect()
    got: list[bytes] = []
    pending: list[asyncio.Future[None]] = []

    def take(frame: bytes) -> asyncio.Future[None]:
        got.append(frame)
        pending.append(asyncio.get_running_loop().create_future())
        return pending[-1]

    listening = asyncio.ensure_future(link.listen(take))
    await asyncio.sleep(0.05)  # listening before anything comes: every frame is pushed
    await room.send_all([b"\x00\x02%d" % i for i in range(5)])
    await asyncio.sleep(0.1)
    assert got == [b"\x00\x020"]  # the rest wait in the socket: back-pressure on the room
    pending[0].set_result(None)
    await until(lambda: len(got) == 2)
    for future in pending[1:]:
        future.set_result(None)
    for i in range(2, 5):
        await until(lambda i=i: len(got) > i)
        pending[i].set_result(None)
    assert got == [b"\x00\x02%d" % i for i in range(5)]
    link.close()
    await asyncio.wait_for(listening, 3)


async def test_listening_on_a_closed_link_ends_at_once(served: Served) -> None:
    link, _room = await served.connect()
    link.close()
    await asyncio.wait_for(link.listen(lambda frame: None), 1)
    assert await link.recv() is None


async def test_frames_sent_arrive_in_order_and_a_closed_link_refuses_more(served: Served) -> None:
    link, room = await served.connect("/received")
    for i in range(20):
        await link.send(b"\x00\x02%d" % i)
    await until(lambda: len(room.received) == 20)
    assert room.received == [b"\x00\x02%d" % i for i in range(20)]
    link.close()
    with pytest.raises(RoomClosed):
        await link.send(b"\x00\x02late")
    await asyncio.sleep(0.1)
    assert len(room.received) == 20


async def test_a_dropped_connection_ends_listening_and_every_later_read(served: Served) -> None:
    """A killed server sends no close frame; tornado queues the close only once, so a
    read after it must not wait for another that never comes."""
    link, room = await served.connect()
    listening = asyncio.ensure_future(link.listen(lambda frame: None))
    await asyncio.sleep(0.05)
    room.ws_connection.stream.close()  # the server is killed
    await asyncio.wait_for(listening, 3)
    assert link.close_code is None  # no close frame: the relay reconnects (codes.TRANSIENT)
    assert await asyncio.wait_for(link.recv(), 1) is None
    assert await asyncio.wait_for(link.recv(), 1) is None
