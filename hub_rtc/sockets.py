"""Writing a binary websocket frame without a task per frame, for both halves.

tornado's ``write_message`` wraps every write in a task of its own (only to turn
one closed-stream error into another); under a room's fan-out or a relay that
is one task per frame per client.  :func:`write_binary` calls the frame writer
under it and returns the stream's own future, which is done at once when the
socket took the frame (the usual case) and raises ``StreamClosedError`` (not
``WebSocketClosedError``) if the connection went away meanwhile.
"""

from __future__ import annotations

from typing import Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

#: the websocket opcode of a binary frame (RFC 6455)
BINARY_FRAME = 0x2
#: what a write to a connection that has gone away raises
CLOSED = (WebSocketClosedError, StreamClosedError)


def write_binary(socket: Any, frame: bytes) -> Any:
    """Write ``frame`` on ``socket`` (a tornado websocket handler or client
    connection); the awaitable is done once the socket has taken it.  Raises one
    of :data:`CLOSED` if the connection is closed already."""
    conn = getattr(socket, "ws_connection", None) or getattr(socket, "protocol", None)
    if conn is None or conn.is_closing():
        raise WebSocketClosedError()
    write_frame = getattr(conn, "_write_frame", None)
    if write_frame is None or getattr(conn, "_compressor", None) is not None:
        return socket.write_message(frame, binary=True)  # compressed: tornado's own path
    return write_frame(True, BINARY_FRAME, frame)
