"""/sessions/{id}/rooms/{path}: the relay websocket, y-sync both ways.

Authenticate the caller with the hub, find the document's place (the domain's
:func:`~hub_rtc.manager.documents.place.place`: 403, 404, 409 and 422 come back
as HTTP answers, before anything connects), open its room on the session's
server as the caller, then let :class:`hub_rtc.relay.Relay` carry frames.  One
upstream connection per client: the guarded room enforces rights per connection
(see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from tornado.websocket import WebSocketHandler

from ...adapters.upstream import ServerRef, Upstream, UpstreamError
from ...manager import Actor
from ...manager.actor import SCOPE_DOCUMENTS_READ, SCOPE_DOCUMENTS_WRITE
from ...manager.documents.place import Place, refusal
from ...manager.errors import Forbidden
from ...relay import Closing, ConnectError, Link, Relay, RelayLimits, codes
from ...sockets import write_binary
from .base import APIHandler
from .sessions import SESSION


class _ClientSide:
    """The relayed client's websocket as :class:`hub_rtc.relay.Client` sees it."""

    def __init__(self, handler: RoomRelayHandler) -> None:
        self.handler = handler

    def send(self, frame: bytes) -> Awaitable[Any]:
        return write_binary(self.handler, frame)  # (no task per frame)

    def close(self, code: int, reason: str) -> None:
        self.handler.close(code, reason[:120])  # a close frame holds 123 bytes of reason


class RoomRelayHandler(APIHandler, WebSocketHandler):
    _link: Link | None = None
    _relay: Relay | None = None
    _running: asyncio.Future[Closing] | None = None

    @property
    def upstream(self) -> Upstream:
        return self.settings["upstream"]

    @property
    def limits(self) -> RelayLimits:
        return self.settings.get("relay_limits") or RelayLimits()

    @property
    def max_message_size(self) -> int:
        return self.limits.max_message_bytes

    async def get(self, session_id: str, path: str) -> None:  # type: ignore[override]
        actor = await self.actor(None)
        read_only = _read_only(actor)
        place = await self.manager.documents.place(actor, session_id, path, relayed=True,
                                                   doc_type=self.get_argument("type", None))
        self._link = await self._open_first(actor, place, read_only)
        self._name = f"{actor.name}@{session_id}/{place.path}"
        self._reconnect = lambda: self._open_again(actor, place, read_only)
        await WebSocketHandler.get(self, session_id, path)
        if self.ws_connection is None and self._link is not None:  # not a websocket request
            self._link.close()

    async def _open_room(self, actor: Actor, place: Place, read_only: bool) -> Link:
        return await self.upstream.open_room(ServerRef(*place.server), place.server_path,
                                             as_user=actor.name, doc_type=place.doc_type,
                                             read_only=read_only)

    async def _open_first(self, actor: Actor, place: Place, read_only: bool) -> Link:
        """The first connection: every refusal an HTTP answer, before the upgrade."""
        try:
            return await self._open_room(actor, place, read_only)
        except UpstreamError as e:
            raise refusal(e, place.server_path, actor.name, place.doc_type) from None

    async def _open_again(self, actor: Actor, place: Place, read_only: bool) -> Link:
        try:
            return await self._open_room(actor, place, read_only)
        except UpstreamError as e:
            raise ConnectError(e.transient, codes.for_status(e.status), e.message) from None

    def open(self, *args: Any, **kwargs: Any) -> None:
        assert self._link is not None
        self._relay = Relay(_ClientSide(self), self._link, self._reconnect, self.limits,
                            name=self._name)
        self._running = asyncio.ensure_future(self._relay.run())

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        if self._relay is None:
            return None
        # returning the awaitable makes tornado read the next frame only after it: back-pressure
        return self._relay.take(message if isinstance(message, bytes) else message.encode())

    def on_close(self) -> None:
        if self._relay is not None:
            self._relay.stop()
        elif self._link is not None:
            self._link.close()

    def check_origin(self, origin: str) -> bool:
        # Same origin only (tornado's default): a page elsewhere must not ride on a
        # signed-in user's cookie.  Scripts send no Origin header and are let in.
        return bool(super().check_origin(origin))


def _read_only(actor: Actor) -> bool:
    """Whether the token may only read documents; 403 if it may not even read them."""
    if actor.has(SCOPE_DOCUMENTS_WRITE):
        return False
    if actor.has(SCOPE_DOCUMENTS_READ):
        return True
    raise Forbidden(f"this token lacks the {SCOPE_DOCUMENTS_READ} scope (or "
                    f"{SCOPE_DOCUMENTS_WRITE}, to edit)")


default_handlers = [
    (SESSION + r"/rooms/(?P<path>.+)", RoomRelayHandler),
]
