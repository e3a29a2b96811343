"""The hub, over its REST API, as the service's own credentials see it."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..manager.ports import HostingError, HubUser, ServerKey, ServerState

#: how often a starting server's state is asked for
POLL_SECONDS = 0.5
PAGINATED = "application/jupyterhub-pagination+json"


def _q(value: str) -> str:
    return quote(value, safe="")


def server_path(user: str, name: str) -> str:
    """The hub API path of a user's default (``name`` "") or named server."""
    return f"/users/{_q(user)}/servers/{_q(name)}" if name else f"/users/{_q(user)}/server"


def server_state(model: dict[str, Any], name: str) -> ServerState | None:
    """The state of server ``name`` in a hub user model (needs ``read:servers``)."""
    server = (model.get("servers") or {}).get(name)
    if server is None:
        return None
    started = server.get("started")
    return ServerState(bool(server.get("ready")),
                       datetime.fromisoformat(started) if started else None, server.get("pending"))


class HubClient:
    """The domain's :class:`~hub_rtc.manager.ports.Hub` over JupyterHub's REST API.

    Look-ups are cached for ``cache_seconds``: a decision needs the user's hub
    groups, and asking the hub on every keystroke-sized request would make
    the hub the bottleneck.  Server states are never cached.
    """

    def __init__(self, api_url: str, token: str, cache_seconds: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Any]] = {}
        self.http = AsyncHTTPClient()

    async def _get(self, path: str, fresh: bool = False) -> Any | None:
        """GET a hub API path; None on 404."""
        hit = self._cache.get(path)
        if hit and not fresh and time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1]
        request = HTTPRequest(
            f"{self.api_url}{path}", headers={"Authorization": f"token {self.token}"}
        )
        try:
            response = await self.http.fetch(request)
            value = json.loads(response.body)
        except HTTPClientError as e:
            if e.code != 404:
                raise
            value = None
        self._cache[path] = (time.monotonic(), value)
        return value

    async def _call(self, method: str, path: str, body: Any = None, *,
                    fine: tuple[int, ...] = (), accept: str | None = None) -> tuple[int, Any]:
        """One hub API call for hosting: (status, JSON); HostingError unless 2xx or in ``fine``."""
        headers = {"Authorization": f"token {self.token}"}
        if accept:
            headers["Accept"] = accept
        payload = json.dumps(body) if body is not None else ("{}" if method in ("POST", "PATCH") else None)
        request = HTTPRequest(f"{self.api_url}{path}", method=method, headers=headers, body=payload)
        try:
            response = await self.http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:  # refused, reset, timed out
            raise HostingError(f"the hub did not answer {method} {path}: {e}") from None
        if response.code < 300 or response.code in fine:
            return response.code, json.loads(response.body) if response.body else None
        message = _message(response.body) or response.reason
        retry = response.code >= 500 or response.code in (429, 599)
        raise HostingError(f"the hub answered {method} {path} with {response.code}: {message}",
                           retry=retry)

    async def user(self, name: str, *, fresh: bool = False) -> HubUser | None:
        model = await self._get(f"/users/{_q(name)}", fresh)
        if model is None:
            return None
        created = model.get("created")
        return HubUser(
            name=model["name"],
            groups=frozenset(model.get("groups") or ()),
            created=datetime.fromisoformat(created) if created else None,
        )

    async def group_exists(self, name: str) -> bool:
        return await self._get(f"/groups/{_q(name)}") is not None

    # -- hosting -------------------------------------------------------------------

    async def server(self, user: str, name: str) -> ServerState | None:
        code, model = await self._call("GET", f"/users/{_q(user)}", fine=(404,))
        return None if code == 404 else server_state(model, name)

    async def active_servers(self) -> dict[ServerKey, ServerState]:
        out: dict[ServerKey, ServerState] = {}
        offset: int | None = 0
        while offset is not None:
            query = urlencode({"state": "active", "offset": offset, "limit": 200})
            _, page = await self._call("GET", f"/users?{query}", accept=PAGINATED)
            for model in page["items"]:
                for name in model.get("servers") or {}:
                    state = server_state(model, name)
                    if state is not None:
                        out[(model["name"], name)] = state
            following = (page.get("_pagination") or {}).get("next")
            offset = following["offset"] if following else None
        return out

    async def create_user(self, name: str) -> None:
        await self._call("POST", f"/users/{_q(name)}", fine=(409,))  # 409: it exists already
        self._cache.pop(f"/users/{_q(name)}", None)

    async def start_server(self, user: str, name: str, timeout: float) -> ServerState:
        # 400: already running or pending; 500: jupyterhub 6.1.1 answers a spawn
        # slower than 10 s with 500 but carries on, so the state decides
        await self._call("POST", server_path(user, name), fine=(400, 500))
        deadline = time.monotonic() + timeout
        while True:
            state = await self.server(user, name)
            if state is None:
                raise HostingError(f"the hub could not start {user}'s server (see the hub's log)")
            if state.ready:
                return state
            if time.monotonic() > deadline:
                raise HostingError(f"{user}'s server was not ready within {timeout:g} s")
            await asyncio.sleep(POLL_SECONDS)

    async def stop_server(self, user: str, name: str) -> None:
        await self._call("DELETE", server_path(user, name), fine=(400, 404))  # not running

    async def share(self, server: ServerKey, kind: str, principal: str) -> None:
        await self._call("POST", f"/shares/{_q(server[0])}/{_q(server[1])}", {kind: principal})

    async def unshare(self, server: ServerKey, kind: str, principal: str) -> None:
        # PATCH without scopes revokes the whole share; 404: the server is gone, and its shares too
        await self._call("PATCH", f"/shares/{_q(server[0])}/{_q(server[1])}", {kind: principal},
                         fine=(404,))


def _message(body: bytes | None) -> str:
    try:
        return str(json.loads(body or b"").get("message", ""))
    except (ValueError, AttributeError):
        return ""
