"""Websocket close codes: which upstream closes the relay rides out, and what the
client is told.

- 4403, 4400, 4404, 1003, …: the shared server closed the room with it (access
  withdrawn, a malformed or out-of-order update, no such document, reload):
  passed on as is, never reconnected.
- 1013: the server stayed unreachable for the reconnect limit, or the client
  sent more than the hold limit while it was away.
- 4408: the client took no message for the stall limit.
- 1009: a message larger than the size limit.
- 1011: the relay failed unexpectedly.
"""

from __future__ import annotations

from ..protocol import ACCESS_WITHDRAWN, BAD_REQUEST, CLIENT_STALLED, NOT_FOUND, TOO_LARGE

__all__ = ["ACCESS_WITHDRAWN", "BAD_REQUEST", "CLIENT_STALLED", "NOT_FOUND", "TOO_LARGE", "for_client",
           "for_status", "reconnects"]

TRY_AGAIN_LATER = 1013
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011

#: upstream closes that mean "the server went away", not "no": reconnect.
#: None: the TCP connection dropped without a close frame (a killed server).
TRANSIENT = frozenset({None, 1000, 1001, 1005, 1006, 1011, 1012, 1013, 1014})

#: codes that may not be sent in a close frame (RFC 6455 7.4.1)
_RESERVED = frozenset({1004, 1005, 1006, 1015})


def reconnects(code: int | None) -> bool:
    """Whether an upstream close with ``code`` is ridden out by reconnecting."""
    return code in TRANSIENT


def for_client(code: int | None) -> int:
    """The code to close the client with when passing on an upstream close."""
    if code is None or code in _RESERVED or not (1000 <= code <= 4999):
        return INTERNAL_ERROR
    return code


def for_status(status: int) -> int:
    """The close code for an HTTP status the server refused a reconnect with."""
    if status in (401, 403):
        return ACCESS_WITHDRAWN
    if status == 404:
        return NOT_FOUND
    return BAD_REQUEST if 400 <= status < 500 else TRY_AGAIN_LATER
