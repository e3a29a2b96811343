"""``GET /servers/events``: the websocket a shared server's extension keeps open.

The protocol is described in :mod:`hub_rtc.adapters.events`; this is its
tornado end: it checks the server's token before the upgrade, joins the
:class:`~hub_rtc.adapters.events.EventHub` and turns acknowledgements into
the outcomes the domain waits for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import Future
from typing import Any

from tornado.web import HTTPError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ...adapters.events import CLOSED_FIRST, MAX_UNANSWERED, EventHub, acknowledged, consume
from ...manager import Actor, Manager, RTCError
from ...manager.notify import Outcome
from ...manager.ports import ServerKey
from ...records import DatabaseUnavailable

log = logging.getLogger("hub_rtc.service")

#: seconds between websocket pings, which also find dead connections
PING_SECONDS = 30.0


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
                answered.set_result(acknowledged(data))
        elif kind == "ready":
            self.events.ready(self.server)

    def on_pong(self, data: bytes) -> None:
        """The server answered a ping (every PING_SECONDS): it is still there."""
        asyncio.ensure_future(self._seen())

    async def _seen(self) -> None:
        try:
            await self.manager.servers.seen(self.server)
        except DatabaseUnavailable as e:  # nothing lost: the next ping says it again
            log.debug("events: could not note %s as seen: %s", self.server, e)

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
        sent.add_done_callback(consume)
        return True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"status": status_code, "message": message}))
