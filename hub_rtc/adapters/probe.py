"""The domain's readers of a server's contents API, over the upstream client.

Both read as the hub user named (the service's on-behalf link):

- :func:`notebook_probe`, the :data:`~hub_rtc.manager.ports.NotebookProbe`
  that checks a cell rule against the notebook it names.  The saved file is
  what the contents API returns: a cell added a moment ago may not be in it
  yet, which the answer then says.  A server that does not answer soon is
  "not verified", never a refusal.
- :class:`UpstreamContents`, the :class:`~hub_rtc.manager.documents.listing.Contents`
  from which the pages list a session's notebooks and their cells.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from ..manager.ports import Found, NotebookProbe, ServerKey
from .upstream import ServerRef, Upstream

#: how long a cell-rule change waits for the session's server to show the notebook
PROBE_SECONDS = 5.0


def notebook_probe(upstream: Upstream, timeout: float = PROBE_SECONDS) -> NotebookProbe:
    async def probe(server: ServerKey, path: str, as_user: str) -> Found:
        url = "api/contents/" + quote(path) + "?content=1&type=notebook"
        try:
            status, model = await asyncio.wait_for(
                upstream.request(ServerRef(*server), "GET", url, as_user=as_user), timeout)
        except TimeoutError:
            return Found("unknown", why=f"the session's server did not answer within {timeout:g} s")
        return found(status, model)

    return probe


def found(status: int, model: Any) -> Found:
    """What a contents API answer says is at the path."""
    if status == 200 and isinstance(model, dict) and model.get("type") == "notebook":
        cells = (model.get("content") or {}).get("cells") or []
        return Found("notebook", frozenset(str(c["id"]) for c in cells
                                           if isinstance(c, dict) and c.get("id")))
    if status == 404:
        return Found("missing")
    return Found("unknown", why=why(status, model))


def why(status: int, model: Any) -> str:
    """What a contents API answer other than the model asked for says went wrong."""
    message = model.get("message") if isinstance(model, dict) else None
    if status == 599:
        return "the session's server is not reachable (is it running?)"
    return f"the session's server answered {status}" + (f": {message}" if message else "")


class UpstreamContents:
    """A server's folders and notebooks through its contents API; LookupError(why) otherwise."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def directory(self, server: ServerKey, path: str, as_user: str) -> dict[str, Any]:
        return await self._get(server, path, "?content=1", as_user)

    async def notebook(self, server: ServerKey, path: str, as_user: str) -> dict[str, Any]:
        return await self._get(server, path, "?content=1&type=notebook", as_user)

    async def _get(self, server: ServerKey, path: str, query: str, as_user: str) -> dict[str, Any]:
        status, model = await self.upstream.request(
            ServerRef(*server), "GET", "api/contents/" + quote(path) + query, as_user=as_user)
        if status != 200 or not isinstance(model, dict):
            raise LookupError(why(status, model))
        return model
