"""The service's client for shared single-user servers, on behalf of a user.

The service reaches a server through JupyterHub's proxy (``upstream_url``,
the proxy's origin as the service sees it, plus the hub's base URL), or at
the server's own address from the hub's routing table (``relay_route =
"direct"``, :class:`HubRoutes`), with its OWN hub token, which holds
``access:servers`` through the ``shares`` scope, and names the user it acts
for in :data:`ON_BEHALF_HEADER`.  The hub_rtc
extension on the server believes that header from this service alone and
then treats the request exactly as that user's own (see docs/security.md).

Everything here is web plumbing (tornado's HTTP and websocket clients); the
relay's logic lives in :mod:`hub_rtc.relay` and the document client's in
:mod:`hub_rtc.documents`, which speak to an :class:`UpstreamRoom` only as the
room :class:`~hub_rtc.protocol.Channel` it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from ..protocol import ON_BEHALF_HEADER, READ_ONLY_HEADER, ROOM_ROUTE, OnFrame
from ..relay import LinkClosed
from ..sockets import CLOSED, write_binary

log = logging.getLogger("hub_rtc.upstream")

#: jupyter-collaboration's file formats by document type
FORMATS = {"notebook": "json", "file": "text"}
#: statuses that mean "the server is not there right now", not "no"
TRANSIENT_STATUSES = frozenset({424, 502, 503, 504, 599})
PAGINATED = "application/jupyterhub-pagination+json"


@dataclass(frozen=True)
class ServerRef:
    """A single-user server: its user and its name ("" for the default server)."""

    user: str
    name: str = ""


class UpstreamError(Exception):
    """Opening a document on a server failed; ``status`` is the HTTP status (599: unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth trying again later (the server restarts, the proxy has no route yet:
        the hub answers for it, with 424, 503 or a redirect to its spawn page)."""
        return self.status in TRANSIENT_STATUSES or 300 <= self.status < 400


class RoomClosed(LinkClosed):
    """Sending to a room websocket that has closed."""


class UpstreamRoom:
    """One open room websocket on a shared server, as one user: a room
    :class:`~hub_rtc.protocol.Channel`.

    ``recv()`` returns the next binary frame, or None once the socket is
    closed (then ``close_code``/``close_reason`` say why); ``send()`` waits
    until the frame is handed to the socket, which is the relay's
    back-pressure towards the client.
    """

    def __init__(self, ws: WebSocketClientConnection, room_id: str, file_id: str,
                 session_id: str) -> None:
        self._ws = ws
        self.room_id = room_id
        self.file_id = file_id
        self.session_id = session_id
        self._closed = False
        #: the close has been read
        self._ended = False

    def send(self, frame: bytes) -> Awaitable[None]:
        if self._closed:
            raise RoomClosed(self.room_id)
        try:
            written = write_binary(self._ws, frame)
        except CLOSED:
            raise RoomClosed(self.room_id) from None
        if written.done() and written.exception() is None:
            return written  # (usually: the socket took it at once; no coroutine, no task)
        return self._written(written)

    async def _written(self, written: Awaitable[None]) -> None:
        try:
            await written
        except CLOSED:
            raise RoomClosed(self.room_id) from None

    async def recv(self) -> bytes | None:
        if self._closed or self._ended:
            return None  # (tornado queues the close once: another read would wait forever)
        message = await self._ws.read_message()
        if message is None:
            self._ended = True
            return None
        return _as_bytes(message)

    async def listen(self, on_frame: OnFrame) -> None:
        """Push every frame to ``on_frame`` as tornado reads it, until the socket closes
        (what :func:`~hub_rtc.protocol.pump` uses; ``recv`` must not be called
        meanwhile).

        tornado's protocol calls its connection's ``on_message`` for each message
        and reads the next only once what that returns is done; the connection's
        own puts each message into a one-slot queue for ``read_message``, which
        costs a future and a task wake-up per frame.  Frames that came before
        this call wait in that queue and are handed on first, in order; then
        ``on_message`` is replaced, and only the close still comes through the
        queue (as None)."""
        ws = self._ws
        while ws.read_queue.qsize():  # (more may queue meanwhile: until none is left)
            frame = await self.recv()
            if frame is None:
                return
            pending = on_frame(frame)
            if pending is not None:
                await pending
        if self._closed or self._ended:
            return
        # no await since the queue was seen empty: no frame can slip past in between
        ws.on_message = lambda message: on_frame(_as_bytes(message))  # type: ignore[method-assign]
        while await self.recv() is not None:
            pass  # (nothing else is queued now)

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self._ws.close_reason

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close, and release the TCP socket now rather than after the closing handshake."""
        if self._closed:
            return
        self._closed = True
        self._ws.close(code, reason)
        stream = getattr(self._ws.protocol, "stream", None)
        if stream is not None:
            stream.close()


class HubRoutes:
    """Where the proxy sends each server: the hub's copy of the proxy's routing table
    (``GET /hub/api/proxy``, scope ``proxy``), so the relay can skip the proxy hop.

    Reloaded when older than ``cache_seconds`` and after a connection to a
    target failed (a restarted server listens elsewhere).
    """

    def __init__(self, api_url: str, token: str, cache_seconds: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.cache_seconds = cache_seconds
        self.http = AsyncHTTPClient()
        self._targets: dict[ServerRef, str] = {}
        self._loaded_at: float | None = None
        self._loading: asyncio.Future[None] | None = None

    async def target(self, server: ServerRef) -> str | None:
        """The server's own origin (``http://10.0.0.5:8888``); None if it has no route."""
        fresh = self._loaded_at is not None and time.monotonic() - self._loaded_at < self.cache_seconds
        if not fresh:
            if self._loading is None or self._loading.done():
                self._loading = asyncio.ensure_future(self._load())
            await asyncio.shield(self._loading)
        return self._targets.get(server)

    def forget(self) -> None:
        self._loaded_at = None

    async def _load(self) -> None:
        targets: dict[ServerRef, str] = {}
        offset: int | None = 0
        try:
            while offset is not None:
                response = await self.http.fetch(HTTPRequest(
                    f"{self.api_url}/proxy?offset={offset}&limit=200",
                    headers={"Authorization": f"token {self.token}", "Accept": PAGINATED}))
                page = json.loads(response.body)
                targets.update(route_targets(page.get("items") or {}))
                following = (page.get("_pagination") or {}).get("next")
                offset = following["offset"] if following else None
        except (OSError, HTTPClientError, ValueError, KeyError) as e:
            log.warning("the hub's routing table could not be read (%s): relaying through the "
                        "proxy meanwhile", e)
        self._targets, self._loaded_at = targets, time.monotonic()


def route_targets(routes: dict[str, Any] | list[Any]) -> dict[ServerRef, str]:
    """Single-user servers' targets in (a page of) the hub's routing table."""
    specs = routes.values() if isinstance(routes, dict) else routes
    out = {}
    for spec in specs:
        data = spec.get("data") or {}
        if "user" in data and spec.get("target"):
            out[ServerRef(str(data["user"]), str(data.get("server_name") or ""))] = str(spec["target"])
    return out


class Upstream:
    """Talk to shared single-user servers as ``as_user``, with the service's credentials."""

    def __init__(self, base_url: str, token: str, hub_base_url: str = "/", *,
                 routes: HubRoutes | None = None, connect_timeout: float = 20.0,
                 request_timeout: float = 60.0, max_message_bytes: int = 128 * 1024 * 1024) -> None:
        parts = urlsplit(base_url)
        # the origin only: servers live at <hub base URL>user/<name>/ below it
        self.origin = f"{parts.scheme or 'http'}://{parts.netloc}"
        self.hub_base_url = "/" + hub_base_url.strip("/") + "/" if hub_base_url.strip("/") else "/"
        self.token = token
        #: given: reach servers at their own address rather than through the proxy
        self.routes = routes
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_message_bytes = max_message_bytes
        self.http = AsyncHTTPClient()

    # -- addresses ---------------------------------------------------------

    def server_path(self, server: ServerRef) -> str:
        """The server's base path, as the proxy routes it (ends with ``/``)."""
        path = f"{self.hub_base_url}user/{quote(server.user, safe='')}/"
        if server.name:
            path += f"{quote(server.name, safe='')}/"
        return path

    def server_url(self, server: ServerRef) -> str:
        """The server's base URL through the proxy."""
        return self.origin + self.server_path(server)

    async def base_url(self, server: ServerRef) -> str:
        """Where to reach the server now: its own address if known, else through the proxy."""
        if self.routes is not None:
            target = await self.routes.target(server)
            if target:
                return target.rstrip("/") + self.server_path(server)
        return self.server_url(server)

    def _unreachable(self) -> None:
        if self.routes is not None:
            self.routes.forget()  # it may have moved (restarted elsewhere)

    def _headers(self, as_user: str, read_only: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"token {self.token}", ON_BEHALF_HEADER: quote(as_user, safe="")}
        if read_only:
            headers[READ_ONLY_HEADER] = "1"
        return headers

    # -- HTTP ----------------------------------------------------------------

    async def request(self, server: ServerRef, method: str, path: str, *, as_user: str,
                      body: Any = None, read_only: bool = False) -> tuple[int, Any]:
        """One REST call on ``server``'s API as ``as_user``: (status, parsed JSON or None).

        ``path`` is relative to the server's base URL (``api/contents/x.ipynb?content=1``).
        Errors come back as their status (599: the server could not be reached).
        """
        headers = self._headers(as_user, read_only)
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            payload = "{}"
        request = HTTPRequest(await self.base_url(server) + path.lstrip("/"), method=method,
                              headers=headers, body=payload, follow_redirects=False,
                              connect_timeout=self.connect_timeout,
                              request_timeout=self.request_timeout)
        try:
            response = await self.http.fetch(request, raise_error=False)
        except HTTPClientError as e:  # timeouts: 599
            self._unreachable()
            return e.code, {"message": str(e)}
        except OSError as e:  # refused, reset, unresolvable: the server is not there
            self._unreachable()
            return 599, {"message": str(e)}
        return response.code, _parse(response.body)

    # -- rooms -------------------------------------------------------------

    async def open_room(self, server: ServerRef, doc_path: str, *, as_user: str,
                        doc_type: str = "notebook", read_only: bool = False) -> UpstreamRoom:
        """Open the document's collaboration session, then its room websocket, as ``as_user``.

        Raises :class:`UpstreamError` with the server's status (403: not let
        in, 404: no such document; transient ones: not reachable now).
        """
        file_format = FORMATS.get(doc_type)
        if file_format is None:
            raise UpstreamError(400, f"unknown document type {doc_type!r}")
        await self._require_file(server, doc_path, as_user, read_only)
        status, answer = await self.request(
            server, "PUT", f"api/collaboration/session/{quote(doc_path.strip('/'), safe='/')}",
            as_user=as_user, body={"format": file_format, "type": doc_type}, read_only=read_only)
        if status not in (200, 201) or not isinstance(answer, dict) or "fileId" not in answer:
            raise UpstreamError(status if status >= 400 else 502, _message(answer, status))
        room_id = f"{file_format}:{doc_type}:{answer['fileId']}"
        ws = await self._room_socket(server, room_id, str(answer["sessionId"]), as_user, read_only)
        return UpstreamRoom(ws, room_id, str(answer["fileId"]), str(answer["sessionId"]))

    async def _require_file(self, server: ServerRef, doc_path: str, as_user: str,
                            read_only: bool) -> None:
        """Ask for the file first.  A missing one is a 404 here (its room would open
        and close with 4404 only later), and while the server is down the hub
        answers this GET with "not running" (a redirect, 424 or 503), where it
        refuses the session's PUT with a 403 that looks like a refusal."""
        status, answer = await self.request(
            server, "GET", f"api/contents/{quote(doc_path.strip('/'), safe='/')}?content=0",
            as_user=as_user, read_only=read_only)
        if status != 200:
            raise UpstreamError(status, _message(answer, status))

    async def _room_socket(self, server: ServerRef, room_id: str, session_id: str,
                           as_user: str, read_only: bool) -> WebSocketClientConnection:
        url = (await self.base_url(server)).replace("http", "ws", 1)
        url += f"{ROOM_ROUTE}{quote(room_id, safe=':')}?sessionId={quote(session_id)}"
        request = HTTPRequest(url, headers=self._headers(as_user, read_only),
                              connect_timeout=self.connect_timeout,
                              request_timeout=self.connect_timeout)
        try:
            return await websocket_connect(request, max_message_size=self.max_message_bytes)
        except HTTPClientError as e:
            raise UpstreamError(e.code, f"the room refused the connection: {e.message}") from None
        except OSError as e:
            self._unreachable()
            raise UpstreamError(599, f"the server could not be reached: {e}") from None


def _as_bytes(message: str | bytes) -> bytes:
    """A room message as bytes (rooms send binary frames; a text one is passed on encoded)."""
    return message if isinstance(message, bytes) else message.encode()


def _parse(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _message(answer: Any, status: int) -> str:
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"])
    return f"the server answered {status}"
