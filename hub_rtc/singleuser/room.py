"""The guarded collaboration room: jupyter-collaboration's room websocket,
with every document update from a connection checked against that user's
rights by :mod:`hub_rtc.guard`.

A thin tornado adapter: it authenticates and authorizes the socket before the
room loads, asks the gate again when the service pushes a change, and hands
every client frame to the connection's :class:`~.connection.RoomConnection`,
which says what the room gets and whether to close (what changes compared
with the stock handler, message by message, is described there).
"""

from __future__ import annotations

import logging
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import ensure_async
from jupyter_server_ydoc.handlers import YDocWebSocketHandler
from jupyter_server_ydoc.utils import decode_file_path
from tornado import web

from ..decision.access import Access
from ..decision.owner import owner_access, owns_server
from ..protocol import CLIENT_STALLED
from ..sockets import CLOSED, write_binary
from .authorizer import hub_name, narrowed, on_behalf, own_token_in, refuse_own_token, room_path
from .connection import RoomConnection
from .docroom import GuardedDocumentRoom
from .roomid import RoomId, RoomIdError, parse_room_id, room_tail


def _log_room_error(exception: Exception, log: logging.Logger) -> bool:
    """As stock: a room logs what goes wrong in it and stays up for its other clients."""
    log.error("hub_rtc: error in a document room", exc_info=exception)
    return True


class GuardedRoomHandler(YDocWebSocketHandler):
    """``/api/collaboration/room/<room id>``, taken over from jupyter_server_ydoc."""

    hub_rtc_watches_itself = True
    #: this socket's guarded-room logic, made in prepare() once the room id is read
    _conn: RoomConnection

    def initialize(self, hub_rtc: Any) -> None:  # type: ignore[override]
        self.rtc = hub_rtc
        super().initialize(**hub_rtc.room_handler_kwargs())
        self._watch_key: int | None = None
        self._decided_at = -1
        self._backlog = 0  # bytes pushed to this socket and not yet written out
        self._backlog_limit = hub_rtc.room_backlog_bytes  # (read once: push runs per frame)

    # -- who may connect -------------------------------------------------

    async def prepare(self) -> None:
        # Authenticate and authorize BEFORE the stock prepare() creates the
        # room and loads the document: a non-member gets 403 and nothing loads.
        await ensure_async(JupyterHandler.prepare(self))  # type: ignore[arg-type]
        where = own_token_in(self, self.identity_provider.hub_auth)
        if where is not None:  # refused by the IdentityProvider already; never the owner here
            refuse_own_token(self, self.log, where)
        user = self.current_user
        if user is None:
            raise web.HTTPError(403, "hub_rtc: sign in to open this document")
        room = self._read_room_id()
        doc_path = room_path(self.settings, room)
        if room.is_document and doc_path is None:
            raise web.HTTPError(404, "hub_rtc: no document on this server has that file id")
        self._conn = RoomConnection(room, doc_path, hub_name(user), tally=self.rtc.tally,
                                    presence=self.rtc.presence, log=self.log)
        self._conn.set_access(await self._decide())
        self._decided_at = self.rtc.gate.epoch  # a push after this is re-checked in open()
        if not self._conn.access.read:
            raise web.HTTPError(403, f"hub_rtc: {self._conn.access.reason or 'not a member'}")
        if room.kind == "transient" and not self._is_server_owner():
            raise web.HTTPError(403, "hub_rtc: only document rooms are open to collaborators")
        if room.is_document:
            await self._make_room(room.raw)
        await super().prepare()
        # jupyter-collaboration read the room id again, its own way: it must be this one
        if getattr(self, "_room_id", None) != room.raw:
            raise web.HTTPError(500, "hub_rtc: jupyter-collaboration opened another room")

    async def _make_room(self, room_id: str) -> None:
        """Put a :class:`GuardedDocumentRoom` where the stock prepare() looks for the room,
        made as it would make its own (same file loader, store path and settings)."""
        server = self._websocket_server
        async with self._room_lock(room_id):
            if server.room_exists(room_id):
                return
            file_format, file_type, file_id = decode_file_path(room_id)
            loader = self._file_loaders[file_id]
            store = self._ystore_class(path=f".{file_type}:{file_id}.y", log=self.log)
            disk = self.rtc.disk

            async def vet(model: dict[str, Any]) -> None:
                await disk.check_stored(loader, model)

            made = GuardedDocumentRoom(
                room_id, file_format, file_type, loader, self.event_logger, store, self.log,
                exception_handler=_log_room_error, save_delay=self._document_save_delay,
                document_load_progressively=self._document_load_progressively,
                notebook_output_delay_threshold_mb=self._notebook_output_delay_threshold_mb,
                vet=vet if file_type == "notebook" else None)
            server.add_room(room_id, made)

    def push(self, frame: bytes) -> None:
        """Write ``frame`` to this socket now (the room's fan-out: no task per client).

        Frames leave in the order pushed.  A client that lets more than
        ``room_backlog_bytes`` pile up is closed; it resyncs when it reconnects."""
        try:
            written = write_binary(self, frame)
        except CLOSED:
            return
        size = len(frame)
        self._backlog += size
        if self._backlog > self._backlog_limit:
            self.log.warning("hub_rtc: %s's room socket fell %d bytes behind; closed",
                             self._conn.name, self._backlog)
            self.close(CLIENT_STALLED, "hub_rtc: too far behind the room; reconnect")
            return
        written.add_done_callback(lambda _: self._sent(size))

    def _sent(self, size: int) -> None:
        self._backlog -= size

    def _read_room_id(self) -> RoomId:
        """The room id from the raw request path, as jupyter-collaboration will read it."""
        try:
            return parse_room_id(room_tail(self.request.path, self.base_url) or "")
        except RoomIdError as e:
            raise web.HTTPError(400, f"hub_rtc: {e}") from None

    def _is_server_owner(self) -> bool:
        return owns_server(hub_name(self.current_user), self.rtc.gate.owner,
                           via_service=on_behalf(self.current_user))

    async def _decide(self, fresh: bool = False) -> Access:
        name, path = self._conn.name, self._conn.doc_path
        if self._is_server_owner():
            # full rights; the service's answer only names the session and identity
            return owner_access(await self.rtc.gate.access(name, path))
        # (None: JupyterLab's global awareness room, open to any member)
        access = await self.rtc.gate.access(name, path, fresh=fresh)
        return narrowed(self.current_user, access)  # the service acting for someone: never more

    async def open(self, room_id: str) -> None:  # type: ignore[override]
        conn = self._conn
        conn.follow(self.rtc.guards, self.room)  # follow the doc before any client message
        if conn.room_id.is_notebook:
            self.rtc.disk.protect(self.room)  # before the room first loads its file
        await super().open(room_id)
        self._watch_key = self.rtc.gate.watch(conn.name, conn.access.session_id, self._recheck)
        if self.rtc.gate.epoch != self._decided_at:  # rights changed while the room loaded
            await self._recheck()
        conn.joined()

    async def _recheck(self) -> None:
        """The service says access may have shrunk: ask again, close or narrow."""
        close = self._conn.recheck(await self._decide(fresh=True))
        if close is not None:
            self.close(close.code, close.reason)
        if self._conn.room_id.is_notebook:
            self.rtc.disk.refresh(self.room)  # rules may have changed: keep their baselines

    def on_close(self) -> None:
        if self._watch_key is not None:  # (then open() made it past prepare())
            self.rtc.gate.unwatch(self._watch_key)
            self._watch_key = None
            self._conn.left()
        super().on_close()

    # -- every message ---------------------------------------------------

    async def on_message(self, message: Any) -> Any:
        if isinstance(message, str):
            message = message.encode()
        forward, close = self._conn.receive(message)
        if close is not None:
            self.close(close.code, close.reason)
        if forward is None:
            return None
        return await super().on_message(forward)
