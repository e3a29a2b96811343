"""What the service and the shared servers' extension say to each other, named once.

Both halves import these: the service's relay and document API when they
reach a room on behalf of a user, the extension's Authorizer and guarded room
when they read that request and close a socket.  A value changed here changes
on both sides at once.
"""

from __future__ import annotations

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

    async def send(self, frame: bytes) -> None:
        """Hand ``frame`` to the connection; raises once the connection has closed."""

    async def recv(self) -> bytes | None:
        """The next frame; None once the connection has closed."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection (again: nothing happens)."""

    @property
    def close_code(self) -> int | None:
        """The code the other end closed with; None while open, or if it just dropped."""

    @property
    def close_reason(self) -> str | None: ...
