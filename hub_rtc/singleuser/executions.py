"""Who ran what: execute requests read off a member's kernel websocket.

The kernel websocket is one user's (the Authorizer let that user open it), so an
``execute_request`` on it is that user's, whatever the message's own header says
(``username`` is the client's to write).  JupyterLab names the cell it runs in the
request's metadata (``cellId``); that cell is counted, as the document's edits are.

Both wire formats of jupyter_server are read: the legacy one (one JSON text frame)
and ``v1.kernel.websocket.jupyter.org`` (a binary frame of offsets, the channel,
then the message's parts).  Anything else, or anything malformed, is not an
execution (the kernel socket still passes it on: what runs is the kernel's
business; this only counts).
"""

from __future__ import annotations

import json
from typing import Any

from .tally import Tally

V1 = "v1.kernel.websocket.jupyter.org"
#: at most this many parts in a v1 frame are looked at (header, parent, metadata, content)
_PARTS = 4
#: the longest cell id kept (nbformat allows 64)
MAX_CELL_ID = 255


def _json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _v1_parts(frame: bytes) -> tuple[str, list[bytes]] | None:
    """(channel, [header, parent_header, metadata, content]) of a v1 frame."""
    if len(frame) < 8:
        return None
    count = int.from_bytes(frame[:8], "little")
    if count < 2 or len(frame) < 8 * (count + 1):
        return None
    offsets = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)]
    if offsets != sorted(offsets) or offsets[-1] > len(frame):
        return None
    try:
        channel = frame[offsets[0]:offsets[1]].decode()
    except UnicodeDecodeError:
        return None
    parts = [frame[offsets[i]:offsets[i + 1]] for i in range(1, min(count - 1, _PARTS + 1))]
    return channel, parts


def _message(frame: str | bytes, protocol: str | None) -> tuple[str, Any, Any] | None:
    """(channel, header, metadata) of one client frame."""
    if protocol == V1:
        if not isinstance(frame, bytes):
            return None
        found = _v1_parts(frame)
        if found is None or len(found[1]) < 3:
            return None
        channel, parts = found
        return channel, _json(parts[0]), _json(parts[2])
    msg = _json(frame)
    if not isinstance(msg, dict):
        return None
    return str(msg.get("channel") or ""), msg.get("header"), msg.get("metadata")


def executed_cell(frame: str | bytes, protocol: str | None) -> tuple[bool, str | None]:
    """Whether ``frame`` asks the kernel to run code, and in which cell (if it says)."""
    found = _message(frame, protocol)
    if found is None:
        return False, None
    channel, header, metadata = found
    if channel != "shell" or not isinstance(header, dict):
        return False, None
    if header.get("msg_type") != "execute_request":
        return False, None
    cell = metadata.get("cellId") if isinstance(metadata, dict) else None
    if not isinstance(cell, str) or not cell or len(cell) > MAX_CELL_ID:
        cell = None
    return True, cell


def count_runs(handler: Any, tally: Tally, session_id: str, user: str, path: str) -> None:
    """Count every execute request on ``handler`` (a kernel websocket ``user`` opened to
    the kernel of the notebook at ``path``, below the session's folder) as ``user``'s."""
    original = handler.on_message

    def on_message(message: str | bytes) -> Any:
        ran, cell = executed_cell(message, getattr(handler, "selected_subprotocol", None))
        if ran:
            tally.add(session_id, user, "execute", path, cell)
        return original(message)

    handler.on_message = on_message


__all__ = ["V1", "count_runs", "executed_cell"]
