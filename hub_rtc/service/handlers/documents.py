"""/sessions/{id}/documents/{path}: read and change a session's live notebooks.

The checks and the CRDT work are the manager's (:mod:`hub_rtc.manager.documents.documents`);
here the upstream client becomes the manager's room opener, its errors become
the API's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ...adapters.upstream import RoomClosed, ServerRef, Upstream, UpstreamError
from ...documents import RoomGone
from ...manager import RoomOpener
from ...manager.documents.place import closed, refusal
from ...manager.ports import ServerKey
from ...protocol import Channel
from .base import APIHandler
from .sessions import SESSION

DOCUMENT = SESSION + r"/documents/(?P<path>.+\.ipynb)"
CELL = DOCUMENT + r"/cells/(?P<cell_id>[^/]+)"


class _Channel:
    """The upstream room, failing the way the document client and the API understand:
    a room that closed for a reason says it with the API's error
    (:func:`~hub_rtc.manager.documents.place.closed`)."""

    def __init__(self, room: Channel, path: str) -> None:
        self.room = room
        self.path = path

    async def send(self, frame: bytes) -> None:
        try:
            await self.room.send(frame)
        except RoomClosed:
            raise self._closed() from None

    async def recv(self) -> bytes | None:
        message = await self.room.recv()
        if message is None:
            error = closed(self.room.close_code, self.room.close_reason, self.path)
            if error is not None:
                raise error
        return message

    def _closed(self) -> Exception:
        code, reason = self.room.close_code, self.room.close_reason or ""
        error = closed(code, reason, self.path)
        if error is None:
            return RoomGone(f"the room closed the connection ({code} {reason})".strip())
        return error

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.room.close(code, reason)

    @property
    def close_code(self) -> int | None:
        return self.room.close_code

    @property
    def close_reason(self) -> str | None:
        return self.room.close_reason


def room_opener(upstream: Upstream) -> RoomOpener:
    """Open notebook rooms through ``upstream``, as the user the request is for."""

    async def open_room(server: ServerKey, path: str, as_user: str) -> _Channel:
        try:
            room = await upstream.open_room(ServerRef(*server), path, as_user=as_user)
        except UpstreamError as e:
            raise refusal(e, path, as_user) from None
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
