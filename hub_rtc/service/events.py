"""The events channel: the service pushes to shared servers over a websocket.

A server's extension connects to ``/api/v1/servers/events?server_name=…``
with its own hub token and receives JSON text messages:

- ``{"type": "hello", "sessions": [ids]}`` once connected.  Anything pushed
  while it was not connected is lost, so it forgets every cached right.
- ``{"type": "invalidate", "session_id", "users": [hub names] | null,
  "reason"}`` when access in a session on that server may have shrunk or
  cell rules changed; ``users`` null means everyone in the session.

:class:`EventHub` is the domain's :class:`~hub_rtc.manager.notify.Notifier`:
it writes each invalidation, as soon as the change has committed, to every
channel the hosting server has open with this service process.
"""

from __future__ import annotations

import json
import logging
from asyncio import Future
from typing import Any

from tornado.web import HTTPError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..manager import Actor, Invalidation, Manager, RTCError
from ..manager.directory import ServerKey

log = logging.getLogger("hub_rtc.service")

#: seconds between websocket pings, which also find dead connections
PING_SECONDS = 30.0


class EventHub:
    """The open events channels, by server."""

    def __init__(self) -> None:
        self._channels: dict[ServerKey, set[ServerEventsHandler]] = {}

    def join(self, server: ServerKey, channel: ServerEventsHandler) -> None:
        self._channels.setdefault(server, set()).add(channel)

    def leave(self, server: ServerKey, channel: ServerEventsHandler) -> None:
        channels = self._channels.get(server, set())
        channels.discard(channel)
        if not channels:
            self._channels.pop(server, None)

    def connected(self, server: ServerKey) -> int:
        return len(self._channels.get(server, ()))

    def invalidate(self, change: Invalidation) -> None:
        message = {"type": "invalidate", "session_id": change.session_id,
                   "users": list(change.users) if change.users is not None else None,
                   "reason": change.reason}
        for channel in list(self._channels.get(change.server, ())):
            channel.send(message)


class ServerEventsHandler(WebSocketHandler):
    """``GET /servers/events``: one shared server's push channel (one-way)."""

    server: ServerKey
    sessions: list[str]

    @property
    def manager(self) -> Manager:
        return self.settings["manager"]

    @property
    def events(self) -> EventHub:
        return self.settings["events"]

    @property
    def ping_interval(self) -> float:
        return PING_SECONDS

    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Check the server's token, as the REST API does, before the upgrade."""
        try:
            caller = await self._caller()
            self.server, self.sessions = await self.manager.servers.hello(
                caller, self.get_argument("server_name", ""), self.get_argument("server_user", None))
        except RTCError as e:
            raise HTTPError(e.status, e.message) from None
        await super().get(*args, **kwargs)

    async def _caller(self) -> Actor:
        hub_auth = self.settings["hub_auth"]
        token = hub_auth.get_token(self, in_cookie=False)
        model = await hub_auth.user_for_token(token, sync=False) if token else None
        access = hub_auth.access_scopes
        if not model or (access and not hub_auth.check_scopes(access, model)):
            raise HTTPError(403, "authenticate with the server's hub token (Authorization: token …)")
        scopes = frozenset(model.get("scopes") or ())
        return Actor(model["name"], frozenset(), scopes, model.get("kind", "user"))

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.events.join(self.server, self)
        self.send({"type": "hello", "sessions": self.sessions})

    def on_message(self, message: str | bytes) -> None:
        return None  # servers only listen

    def on_close(self) -> None:
        self.events.leave(self.server, self)

    def send(self, message: dict[str, Any]) -> None:
        try:
            sent = self.write_message(json.dumps(message))
        except WebSocketClosedError:
            return
        sent.add_done_callback(_consume)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"status": status_code, "message": message}))


def _consume(sent: Future[None]) -> None:
    """A write to a socket that closed meanwhile: nothing to do, nothing to log."""
    if not sent.cancelled():
        sent.exception()
