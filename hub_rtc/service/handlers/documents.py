"""/sessions/{id}/documents/{path}: read and change a session's live notebooks.

The checks and the CRDT work are the manager's (:mod:`hub_rtc.manager.documents.documents`);
here the upstream client becomes the manager's room opener, its errors become
the API's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ...adapters.upstream import RoomChannel, RoomClosed, ServerRef, Upstream, UpstreamError
from ...documents import RoomGone
from ...manager import RoomOpener
from ...manager.errors import Conflict, Forbidden, Invalid, NotFound, RTCError, Unavailable
from ...manager.ports import ServerKey
from ...protocol import ACCESS_WITHDRAWN, BAD_REQUEST, NOT_FOUND
from .base import APIHandler
from .sessions import SESSION

DOCUMENT = SESSION + r"/documents/(?P<path>.+\.ipynb)"
CELL = DOCUMENT + r"/cells/(?P<cell_id>[^/]+)"


class _Channel:
    """The upstream room, failing the way the document client and the API understand."""

    def __init__(self, room: RoomChannel, path: str) -> None:
        self.room = room
        self.path = path

    async def send(self, message: bytes) -> None:
        try:
            await self.room.send(message)
        except RoomClosed:
            raise self._closed() from None

    async def recv(self) -> bytes | None:
        message = await self.room.recv()
        if message is None and self.room.close_code in CLOSE_ERRORS:
            raise self._closed()
        return message

    def _closed(self) -> Exception:
        code, reason = self.room.close_code, self.room.close_reason or ""
        make = CLOSE_ERRORS.get(code)
        if make is None:
            return RoomGone(f"the room closed the connection ({code} {reason})".strip())
        return make(self.path, reason)

    def close(self) -> None:
        self.room.close()


#: how jupyter-collaboration and the guarded room say why they closed a room socket
CLOSE_ERRORS: dict[int | None, Callable[[str, str], Exception]] = {
    NOT_FOUND: lambda path, _: NotFound(f"no notebook {path!r} on the session's server"),
    ACCESS_WITHDRAWN: lambda path, why: Forbidden(f"the shared server withdrew access to {path!r} ({why})"),
    BAD_REQUEST: lambda path, why: Invalid(f"the shared server refused a message for {path!r} ({why})"),
    1003: lambda path, why: Conflict(f"the shared server reset its session of {path!r}; "
                                     f"try again ({why})"),
}


def _refusal(e: UpstreamError, path: str, user: str) -> RTCError:
    if e.status == 403:
        return Forbidden(f"the shared server did not let {user} open {path!r}: {e.message}")
    if e.status == 404:
        return NotFound(f"no notebook {path!r} on the session's server")
    if e.transient:
        return Unavailable(f"the session's server cannot be reached right now ({e.status}: "
                           f"{e.message}); start it, or try again in a moment")
    return Unavailable(f"the session's server answered {e.status} opening {path!r}: {e.message}")


def room_opener(upstream: Upstream) -> RoomOpener:
    """Open notebook rooms through ``upstream``, as the user the request is for."""

    async def open_room(server: ServerKey, path: str, as_user: str) -> _Channel:
        try:
            room = await upstream.open_room(ServerRef(*server), path, as_user=as_user)
        except UpstreamError as e:
            raise _refusal(e, path, as_user) from None
        return _Channel(room, path)

    return open_room


class DocumentsBase(APIHandler):
    @property
    def rooms(self) -> RoomOpener:
        return room_opener(self.settings["upstream"])


class DocumentHandler(DocumentsBase):
    async def get(self, session_id: str, path: str) -> None:
        actor = await self.actor(None)  # documents:read (or :write): the manager checks
        self.write_json(await self.manager.documents.read(actor, session_id, path, self.rooms))


class InsertCellHandler(DocumentsBase):
    async def post(self, session_id: str, path: str) -> None:
        actor = await self.actor(None)
        body = self.body("CellInsert")
        made = await self.manager.documents.insert_cell(actor, session_id, path, body, self.rooms)
        self.set_header("Location", f"cells/{quote(made['id'])}")
        self.write_json(made, 201)


class CellHandler(DocumentsBase):
    async def put(self, session_id: str, path: str, cell_id: str) -> None:
        actor = await self.actor(None)
        source = self.body("CellSource")["source"]
        self.write_json(await self.manager.documents.replace_source(
            actor, session_id, path, cell_id, source, self.rooms))

    async def delete(self, session_id: str, path: str, cell_id: str) -> None:
        actor = await self.actor(None)
        await self.manager.documents.delete_cell(actor, session_id, path, cell_id, self.rooms)
        self.no_content()


class AppendHandler(DocumentsBase):
    async def post(self, session_id: str, path: str, cell_id: str) -> None:
        actor = await self.actor(None)
        text: Any = self.body("CellSource")["source"]
        self.write_json(await self.manager.documents.append_source(
            actor, session_id, path, cell_id, text, self.rooms))


default_handlers = [
    (DOCUMENT, DocumentHandler),
    (DOCUMENT + r"/cells", InsertCellHandler),
    (CELL, CellHandler),
    (CELL + r"/append", AppendHandler),
]
