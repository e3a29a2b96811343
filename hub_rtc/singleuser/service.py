"""Talking to the hub_rtc service with this server's own hub token."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

from ..decision.access import Access

#: the activity endpoint takes at most this many events per request
BATCH_LIMIT = 10_000
#: the longest wait between two tries to reconnect the events channel
EVENTS_RETRY_MAX_SECONDS = 5.0


class ServiceUnavailable(RuntimeError):
    """The service did not answer; callers fail closed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: the HTTP status it answered with; None: it did not answer at all
        self.status = status

    @property
    def final(self) -> bool:
        """It answered, and refused (4xx): sending the same again would not help."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


class ServiceClient:
    """The service's server-facing endpoints (announce, rights, activity, events)."""

    def __init__(self, api_url: str, token: str, server_name: str, log: logging.Logger,
                 timeout: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.server_name = server_name
        self.log = log
        self.timeout = timeout
        self.http = AsyncHTTPClient()

    async def _call(self, method: str, path: str, body: Any) -> Any:
        request = HTTPRequest(
            self.api_url + path, method=method, body=json.dumps(body),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            request_timeout=self.timeout, connect_timeout=self.timeout,
        )
        try:
            response = await self.http.fetch(request)
        except HTTPClientError as e:
            detail = e.response.body.decode(errors="replace")[:300] if e.response else str(e)
            # (599: tornado's own code for no answer at all)
            raise ServiceUnavailable(f"{method} {path}: {e.code} {detail}",
                                     e.code if e.response is not None else None) from None
        except OSError as e:
            raise ServiceUnavailable(f"{method} {path}: {e}") from None
        return json.loads(response.body or b"null")

    async def rights(self, user: str, path: str | None) -> Access:
        data = await self._call("POST", "/servers/rights",
                                {"user": user, "server_name": self.server_name, "path": path})
        return Access.from_json(data)

    async def announce(self, version: str, base_url: str, cannot_sandbox: str | None,
                       cannot_switch: str | None) -> dict[str, Any]:
        """``cannot_sandbox``, ``cannot_switch``: None where this server can run kernels in a
        sandbox, and there as an account of their own; else why not."""
        return await self._call("POST", "/servers/announce", {
            "server_name": self.server_name, "version": version, "base_url": base_url,
            "kernels": {"sandbox": cannot_sandbox is None, "missing": (cannot_sandbox or "")[:300],
                        "account": cannot_switch is None,
                        "account_missing": (cannot_switch or "")[:300]}})

    async def record(self, session_id: str, events: list[dict[str, Any]],
                     batch: str | None = None) -> None:
        """Send ``events``; with a ``batch`` id, each part under an id of its own derived
        from it, so that sending the same batch again counts nothing twice."""
        for part, start in enumerate(range(0, len(events), BATCH_LIMIT)):
            body: dict[str, Any] = {"events": events[start:start + BATCH_LIMIT]}
            if batch is not None:
                body["batch"] = f"{batch}-{part}"
            await self._call("POST", f"/sessions/{quote(session_id)}/activity", body)

    async def presence(self, sessions: dict[str, dict[str, int]]) -> None:
        await self._call("POST", "/servers/presence",
                         {"server_name": self.server_name, "sessions": sessions})

    async def baselines(self, path: str) -> dict[str, Any]:
        """The ruled cells of the notebook at ``path``, their last authorized content, what
        its file may change and (where that is a runner's) the whole notebook's baseline."""
        return dict(await self._call("POST", "/servers/baselines",
                                     {"server_name": self.server_name, "path": path}))

    async def keep_baselines(self, path: str, cells: dict[str, dict[str, Any]],
                             **notebook: Any) -> dict[str, Any]:
        """Keep ``cells``; ``notebook=`` the whole notebook's shape (None: forget it)."""
        return dict(await self._call("PUT", "/servers/baselines", {
            "server_name": self.server_name, "path": path, "cells": cells, **notebook}))

    async def follow_events(self, handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
                            connected: Callable[[], Awaitable[None]]) -> None:
        """Read the service's push channel forever, reconnecting with back-off.

        ``connected`` runs after every (re)connection: anything pushed while
        the channel was down is lost, so the caller forgets what it cached;
        then this says ``ready`` to the service.  ``handle`` runs for each
        message, in order; what it returns (an ``ack``) is sent back.
        """
        url = self.api_url.replace("http", "ws", 1) + "/servers/events?" + urlencode(
            {"server_name": self.server_name})
        delay = 0.5
        while True:
            try:
                ws = await websocket_connect(HTTPRequest(
                    url, headers={"Authorization": f"token {self.token}"},
                    connect_timeout=self.timeout))
            except (OSError, HTTPClientError) as e:
                self.log.warning("hub_rtc: events channel: %s; retrying in %.0fs", e, delay)
                await asyncio.sleep(delay)
                # at most 5 s apart: until it is back, every change of rights waits for this
                # server ("not yet in force"), so after an outage it must not be 30 s away
                delay = min(delay * 2, EVENTS_RETRY_MAX_SECONDS)
                continue
            delay = 0.5
            await connected()
            if await _answer(ws, {"type": "ready"}):
                await self._read_events(ws, handle)
            else:
                self.log.warning("hub_rtc: events channel closed; reconnecting")

    async def _read_events(self, ws: Any,
                           handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]
                           ) -> None:
        while True:
            try:
                raw = await ws.read_message()
            except WebSocketClosedError:
                raw = None
            if raw is None:
                self.log.warning("hub_rtc: events channel closed; reconnecting")
                return
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            try:
                reply = await handle(message)
            except Exception:  # one bad message must not end the channel
                self.log.exception("hub_rtc: handling %r failed", message)
                continue
            if reply is not None and not await _answer(ws, reply):
                self.log.warning("hub_rtc: events channel closed; reconnecting")
                return


async def _answer(ws: Any, message: dict[str, Any]) -> bool:
    """Send ``message`` to the service; False if the channel has closed."""
    try:
        await ws.write_message(json.dumps(message))
    except WebSocketClosedError:
        return False
    return True
