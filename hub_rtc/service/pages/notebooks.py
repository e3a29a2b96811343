"""The notebooks of a session and their cells, read from the shared server.

The cell-rule form lets a manager pick cells from the rendered list rather
than type ids; the list comes from the session's server, read as that
manager (through the service's on-behalf link), so it shows only what they
may read anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ...adapters.upstream import ServerRef, Upstream

#: how much of a session folder the page walks, so a huge folder cannot stall it
MAX_NOTEBOOKS = 20
MAX_DEPTH = 2
PREVIEW_CHARS = 160


@dataclass
class CellSummary:
    index: int
    id: str
    cell_type: str
    preview: str


@dataclass
class Notebook:
    path: str  # relative to the session folder, as cell rules name it
    cells: list[CellSummary] = field(default_factory=list)
    error: str = ""


def summarise(content: dict[str, Any]) -> list[CellSummary]:
    """The cells of an nbformat notebook: id, type and the start of the source."""
    out = []
    for index, cell in enumerate(content.get("cells") or []):
        source = cell.get("source") or ""
        text = "".join(source) if isinstance(source, list) else str(source)
        preview = text.strip()[:PREVIEW_CHARS] + ("…" if len(text.strip()) > PREVIEW_CHARS else "")
        out.append(CellSummary(index, str(cell.get("id") or ""), str(cell.get("cell_type") or ""),
                               preview))
    return out


class NotebookReader:
    def __init__(self, upstream: Upstream, session: dict[str, Any], as_user: str) -> None:
        self.upstream = upstream
        self.server = ServerRef(session["server"]["user"], session["server"]["name"] or "")
        self.root = session["root"].strip("/")
        self.as_user = as_user

    async def notebooks(self) -> list[Notebook]:
        paths = await self._walk("", 0)
        return [await self._load(path) for path in paths[:MAX_NOTEBOOKS]]

    def _api(self, relative: str) -> str:
        full = "/".join(p for p in (self.root, relative) if p)
        return "api/contents/" + quote(full)

    async def _walk(self, relative: str, depth: int) -> list[str]:
        status, model = await self.upstream.request(
            self.server, "GET", self._api(relative) + "?content=1", as_user=self.as_user)
        if status != 200 or not isinstance(model, dict):
            raise LookupError(_why(status, model))
        found: list[str] = []
        for entry in sorted(model.get("content") or [], key=lambda e: e.get("name", "")):
            path = "/".join(p for p in (relative, entry.get("name", "")) if p)
            if entry.get("type") == "notebook":
                found.append(path)
            elif entry.get("type") == "directory" and depth + 1 < MAX_DEPTH:
                found += await self._walk(path, depth + 1)
        return found

    async def _load(self, path: str) -> Notebook:
        status, model = await self.upstream.request(
            self.server, "GET", self._api(path) + "?content=1&type=notebook", as_user=self.as_user)
        if status != 200 or not isinstance(model, dict):
            return Notebook(path, error=_why(status, model))
        return Notebook(path, summarise(model.get("content") or {}))


async def session_notebooks(upstream: Upstream, session: dict[str, Any],
                            as_user: str) -> tuple[list[Notebook], str]:
    """The notebooks of an active session as ``as_user`` may read them, or why there are none."""
    if session["state"] != "active":
        return [], ""
    if session["hosting"]["state"] not in ("ready", "unmanaged"):
        return [], "the session's server is not ready yet: " + session["hosting"]["message"]
    try:
        return await NotebookReader(upstream, session, as_user).notebooks(), ""
    except LookupError as e:
        return [], str(e)


def _why(status: int, model: Any) -> str:
    message = model.get("message") if isinstance(model, dict) else None
    if status == 599:
        return "the session's server is not reachable (is it running?)"
    return f"the session's server answered {status}" + (f": {message}" if message else "")
