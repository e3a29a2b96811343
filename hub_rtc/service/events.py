"""The events channel: the service pushes to shared servers over a websocket.

A server's extension connects to ``/api/v1/servers/events?server_name=…``
with its own hub token.  The service sends JSON text messages:

- ``{"type": "hello", "sessions": [ids]}`` once connected.  Anything pushed
  while it was not connected is lost, so it forgets every cached right.
- ``{"type": "invalidate", "id", "session_id", "users": [hub names] | null,
  "reason"}`` when access in a session on that server may have shrunk or
  cell rules changed; ``users`` null means everyone in the session.

The server answers:

- ``{"type": "ready"}`` once it has forgotten every cached right after
  (re)connecting: whatever was pending for it is in force now;
- ``{"type": "ack", "id", "rechecked", "failed"}`` once it has dropped the
  cached rights an ``invalidate`` names and re-checked every affected socket
  (``failed`` of them could not be: then the change is not confirmed).

:class:`EventHub` is the domain's :class:`~hub_rtc.manager.notify.Notifier`:
it writes each invalidation, as soon as the change has committed, to every
channel the hosting server has open with this service process, and resolves
the push once every one of them acknowledged it (a channel that closes first
resolves it as not confirmed).  The domain waits for that, bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from asyncio import Future
from collections.abc import Awaitable
from typing import Any

from tornado.web import HTTPError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..manager import Actor, Invalidation, Manager, RTCError
from ..manager.directory import ServerKey
from ..manager.notify import Outcome

log = logging.getLogger("hub_rtc.service")

#: seconds between websocket pings, which also find dead connections
PING_SECONDS = 30.0
#: a channel with this many pushes it never acknowledged is closed: the server
#: reconnects and forgets every cached right, which is what they asked for
MAX_UNANSWERED = 1000
CLOSED_FIRST = ("its events channel closed before it confirmed the change (it drops every cached"
                " right when it reconnects)")


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

    def invalidate(self, change: Invalidation) -> Awaitable[Outcome] | None:
        channels = list(self._channels.get(change.server, ()))
        if not channels:
            return None
        message = {"type": "invalidate", "id": uuid.uuid4().hex, "session_id": change.session_id,
                   "users": list(change.users) if change.users is not None else None,
                   "reason": change.reason}
        return _every(channel.push(message) for channel in channels)


async def _every(pushes: Any) -> Outcome:
    """Confirmed once every channel confirmed; else the first reason one did not."""
    outcomes = await asyncio.gather(*pushes)
    return next((o for o in outcomes if not o.confirmed), Outcome(True))


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
        self._unanswered: dict[str, Future[Outcome]] = {}
        self.events.join(self.server, self)
        self.send({"type": "hello", "sessions": self.sessions})

    def push(self, message: dict[str, Any]) -> Future[Outcome]:
        """Send an ``invalidate``; resolves when the server acknowledges its id."""
        answered: Future[Outcome] = asyncio.get_running_loop().create_future()
        if len(self._unanswered) >= MAX_UNANSWERED:
            log.warning("events: %s left %d pushes unanswered; closing its channel",
                        self.server, len(self._unanswered))
            answered.set_result(Outcome(False, CLOSED_FIRST))
            self.close(1008, "too many unanswered pushes")
            return answered
        if self.send(message):
            self._unanswered[message["id"]] = answered
        else:
            answered.set_result(Outcome(False, CLOSED_FIRST))
        return answered

    def on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "ack":
            answered = self._unanswered.pop(str(data.get("id")), None)
            if answered is not None and not answered.done():
                answered.set_result(_acknowledged(data))
        elif kind == "ready":
            self.manager.hosting.server_ready(self.server)

    def on_close(self) -> None:
        self.events.leave(self.server, self)
        for answered in getattr(self, "_unanswered", {}).values():
            if not answered.done():
                answered.set_result(Outcome(False, CLOSED_FIRST))
        self._unanswered = {}

    def send(self, message: dict[str, Any]) -> bool:
        """Write ``message``; False if the channel has closed meanwhile."""
        try:
            sent = self.write_message(json.dumps(message))
        except WebSocketClosedError:
            return False
        sent.add_done_callback(_consume)
        return True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"status": status_code, "message": message}))


def _acknowledged(ack: dict[str, Any]) -> Outcome:
    failed = ack.get("failed")
    if isinstance(failed, int) and failed > 0:
        return Outcome(False, f"{failed} of its sockets could not be re-checked (see its log)")
    return Outcome(True)


def _consume(sent: Future[None]) -> None:
    """A write to a socket that closed meanwhile: nothing to do, nothing to log."""
    if not sent.cancelled():
        sent.exception()
