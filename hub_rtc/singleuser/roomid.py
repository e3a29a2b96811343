"""The room id, read once, strictly.

jupyter-collaboration opens the room named by the last ``/`` segment of the
*raw* request path (``room_id_from_encoded_path(request.path)``), while
tornado hands handlers the same URL percent-decoded.  Any room URL that the
two could read differently (an extra segment, an encoded ``:`` or ``/``, a
trailing part after the file id) let the guard decide about one document
while jupyter-collaboration opened another.  So hub_rtc reads the raw tail of
the route itself, accepts only what every reader reads the same way, and
refuses everything else: the Authorizer, the guarded room and the file-id
lookup all take the :class:`RoomId` this module returns.

Pure: no tornado, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..decision.access import NOTEBOOK
from ..protocol import ROOM_ROUTE

#: the one room that is not a document: JupyterLab's list of who is online
GLOBAL_AWARENESS = "JupyterLab:globalAwareness"
#: the format each document type is loaded and saved in (jupyter_ydoc's types);
#: any other pairing would load the file one way and save it another
FORMAT_OF_TYPE = {"notebook": "json", "file": "text", "unicode": "text", "blob": "base64"}

# jupyter_server_fileid hands out UUIDs; nothing else is a file id here.
_FILE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# jupyter-collaboration's fork rooms and other transient rooms: a bare UUID-like name
_TRANSIENT = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,127}")

RoomKind = Literal["document", "awareness", "transient"]


class RoomIdError(ValueError):
    """A room URL that hub_rtc cannot read exactly; its message says why."""


@dataclass(frozen=True)
class RoomId:
    """A room as jupyter-collaboration will open it."""

    kind: RoomKind
    raw: str
    format: str = ""
    type: str = ""
    file_id: str = ""

    @property
    def is_document(self) -> bool:
        return self.kind == "document"

    @property
    def is_notebook(self) -> bool:
        return self.kind == "document" and self.type == NOTEBOOK


def parse_room_id(tail: str) -> RoomId:
    """The room named by ``tail``: the raw URL path after :data:`ROOM_ROUTE`, query removed.

    Raises :class:`RoomIdError` unless ``tail`` is one segment that needs no
    decoding and is either :data:`GLOBAL_AWARENESS`, ``<format>:<type>:<file id>``
    with the format of that type, or a bare transient room name.
    """
    if not tail:
        raise RoomIdError("the room URL names no room")
    if "/" in tail or "%" in tail or "\\" in tail:
        # one segment, needing no decoding: read the same by every reader
        raise RoomIdError("a room id is one URL segment, without '/' or percent-escapes")
    if tail == GLOBAL_AWARENESS:
        return RoomId("awareness", tail)
    if ":" not in tail:
        if not _TRANSIENT.fullmatch(tail):
            raise RoomIdError(f"{tail[:80]!r} is not a room id")
        return RoomId("transient", tail)
    return _document(tail)


def _document(tail: str) -> RoomId:
    parts = tail.split(":")
    if len(parts) != 3:
        raise RoomIdError("a document room id is <format>:<type>:<file id>")
    fmt, doc_type, file_id = parts
    expected = FORMAT_OF_TYPE.get(doc_type)
    if expected is None:
        raise RoomIdError(f"unknown document type {doc_type[:40]!r}; one of {', '.join(FORMAT_OF_TYPE)}")
    if fmt != expected:
        raise RoomIdError(f"a {doc_type} room is opened in format {expected!r}, not {fmt[:40]!r}")
    if not _FILE_ID.fullmatch(file_id):
        raise RoomIdError("the file id is not one this server hands out")
    return RoomId("document", tail, fmt, doc_type, file_id)


def room_tail(raw_path: str, base_url: str) -> str | None:
    """The raw room id in ``raw_path`` (a request's undecoded path), or None if it is
    not a room URL under ``base_url``."""
    prefix = base_url.rstrip("/") + "/" + ROOM_ROUTE
    if not raw_path.startswith(prefix):
        return None
    return raw_path[len(prefix):]
