"""The domain's :data:`~hub_rtc.manager.access.cells.NotebookProbe` over the upstream client.

Reads a notebook through the shared server's contents API, as the hub user
named (the service's on-behalf link, like the session page's notebook list),
so that a cell rule can be checked against the notebook it names.  The saved
file is what the contents API returns: a cell added a moment ago may not be
in it yet, which the answer then says.  A server that does not answer soon
is "not verified", never a refusal.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from ..manager.access.cells import Found, NotebookProbe
from ..manager.ports import ServerKey
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
    message = model.get("message") if isinstance(model, dict) else None
    if status == 599:
        return Found("unknown", why="the session's server is not reachable (is it running?)")
    return Found("unknown", why=f"the session's server answered {status}"
                               + (f": {message}" if message else ""))
