"""The hub, over its REST API, as the service's own credentials see it."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..manager.directory import HubUser


class HubClient:
    """A :class:`~hub_rtc.manager.directory.HubDirectory` over JupyterHub's REST API.

    Answers are cached for ``cache_seconds``: a decision needs the user's hub
    groups, and asking the hub on every keystroke-sized request would make
    the hub the bottleneck.
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

    async def user(self, name: str, *, fresh: bool = False) -> HubUser | None:
        model = await self._get(f"/users/{quote(name, safe='')}", fresh)
        if model is None:
            return None
        created = model.get("created")
        return HubUser(
            name=model["name"],
            groups=frozenset(model.get("groups") or ()),
            created=datetime.fromisoformat(created) if created else None,
        )

    async def group_exists(self, name: str) -> bool:
        return await self._get(f"/groups/{quote(name, safe='')}") is not None
