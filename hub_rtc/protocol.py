"""What the service and the shared servers' extension say to each other, named once.

Both halves import these: the service's relay and document API when they
reach a room on behalf of a user, the extension's Authorizer and guarded room
when they read that request and close a socket.  A value changed here changes
on both sides at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

#: the header in which the service names the hub user it acts for
#: (percent-encoded UTF-8); a server believes it only from the service's token
ON_BEHALF_HEADER = "X-HubRTC-On-Behalf-Of"
#: "1" with it: that user gets no more than read rights (the caller's token may
#: read documents but not change them); it can only narrow, never widen
READ_ONLY_HEADER = "X-HubRTC-Read-Only"

#: the websocket route of every collaboration room, below the server's base URL
ROOM_ROUTE = "api/collaboration/room/"
#: the same, as a tornado route pattern (the room id is the one group)
ROOM_ROUTE_PATTERN = "/" + ROOM_ROUTE + "(.*)"

#: how session kernels may be run apart from their server (``RTCPolicy.kernel_isolation``),
#: sent with every rights answer; ``auto`` is resolved by the server, which knows its host
KERNEL_ISOLATION = ("auto", "account", "sandbox", "none")

# Close codes of a guarded room (and passed on by the relay as they are).
#: the room refused this user, or access was withdrawn while connected
ACCESS_WITHDRAWN = 4403
#: a malformed, refused-whole or out-of-order message
BAD_REQUEST = 4400
#: no such document
NOT_FOUND = 4404
#: the relay's client took no message for the stall limit
CLIENT_STALLED = 4408
#: a well-formed update beyond the guard's limits (size, nesting, document size)
TOO_LARGE = 4413


class Channel(Protocol):
    """One connection to a room: whole binary y-sync frames both ways.

    Everything that carries a room's frames is one (pycrdt-websocket's
    ``Channel`` is the model): the service's websocket to a shared server, the
    relay's upstream link, the document client's connection, the tests'
    in-memory pairs.  ``recv`` returning None means the connection has closed;
    then ``close_code`` and ``close_reason`` say why, which the relay needs to
    tell a room that went away (reconnect) from one that said no (pass it on).
    """

    def send(self, frame: bytes) -> Awaitable[None]:
        """Hand ``frame`` to the connection; done once it has taken it; raises (at
        once or from the awaitable) once the connection has closed.  An ``async
        def`` will do; a socket that usually takes a frame at once can return
        a future that is already done, which its caller may then skip awaiting."""

    async def recv(self) -> bytes | None:
        """The next frame; None once the connection has closed."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection (again: nothing happens)."""

    @property
    def close_code(self) -> int | None:
        """The code the other end closed with; None while open, or if it just dropped."""

    @property
    def close_reason(self) -> str | None: ...


#: what takes the frames a channel pushes: None once it has dealt with one, or an
#: awaitable the channel waits on before it hands over the next (back-pressure)
OnFrame = Callable[[bytes], "Awaitable[None] | None"]


async def pump(channel: Channel, on_frame: OnFrame) -> None:
    """Hand every frame of ``channel`` to ``on_frame``, in order, until it closes.

    A channel with a ``listen(on_frame)`` of its own pushes each frame as its
    transport reads it (no task woken per frame: the relay's fan-out runs
    through here once per frame per client); any other is read with ``recv``.
    """
    listen = getattr(channel, "listen", None)
    if listen is not None:
        await listen(on_frame)
        return
    while (frame := await channel.recv()) is not None:
        pending = on_frame(frame)
        if pending is not None:
            await pending
