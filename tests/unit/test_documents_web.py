"""The web layer's room opener: upstream failures become the API's errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hub_rtc.adapters.upstream import RoomClosed, ServerRef, UpstreamError
from hub_rtc.documents import RoomGone
from hub_rtc.manager.errors import Conflict, Forbidden, Invalid, NotFound, RTCError, Unavailable
from hub_rtc.service.handlers.documents import room_opener


@dataclass
class FakeRoom:
    close_code: int | None = None
    close_reason: str | None = None
    closed: bool = False

    async def send(self, message: bytes) -> None:
        raise RoomClosed("room")

    async def recv(self) -> bytes | None:
        return None

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed = True


class FakeUpstream:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.calls: list[tuple[ServerRef, str, str]] = []

    async def open_room(self, server: ServerRef, path: str, *, as_user: str) -> Any:
        self.calls.append((server, path, as_user))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize(("status", "error", "words"), [
    (403, Forbidden, "did not let bob open"),
    (404, NotFound, "no notebook 'lab1/nb.ipynb'"),
    (503, Unavailable, "cannot be reached right now"),
    (599, Unavailable, "cannot be reached right now"),
    (500, Unavailable, "answered 500"),
])
async def test_opening_failures_become_api_errors(status: int, error: type[RTCError], words: str) -> None:
    upstream = FakeUpstream(UpstreamError(status, "nope"))
    with pytest.raises(error, match=words):
        await room_opener(upstream)(("alice", "x"), "lab1/nb.ipynb", "bob")
    assert upstream.calls == [(ServerRef("alice", "x"), "lab1/nb.ipynb", "bob")]


@pytest.mark.parametrize(("code", "error"), [
    (4404, NotFound), (4403, Forbidden), (4400, Invalid), (1003, Conflict), (1006, None), (None, None),
])
async def test_how_the_room_closed_says_what_went_wrong(code: int | None, error: type[RTCError] | None
                                                        ) -> None:
    room = FakeRoom(close_code=code, close_reason="why")
    channel = await room_opener(FakeUpstream(room))(("alice", ""), "nb.ipynb", "bob")
    if error is None:
        assert await channel.recv() is None  # the document client reports a closed room itself
    else:
        with pytest.raises(error):
            await channel.recv()
    with pytest.raises(error or RoomGone):
        await channel.send(b"\x00\x00\x00")
    channel.close()
    assert room.closed
