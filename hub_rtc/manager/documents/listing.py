"""The notebooks of a session's folder and their cells, as one person may read them.

The session page lets a manager pick cells from the rendered list rather than
type ids, and the activity page shows the cells in order with their text.  The
list is read from the session's server as that person (through a
:class:`Contents` reader the web layer passes in, over the service's on-behalf
link), so it shows only what they may read anyway.  Nothing here speaks HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hosting.hosting import serves
from ..ports import Contents, ServerKey
from .place import on_server

#: how much of a session folder is walked, so a huge folder cannot stall a page
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


async def session_notebooks(session: dict[str, Any], as_user: str,
                            contents: Contents) -> tuple[list[Notebook], str]:
    """The notebooks of ``session`` (its API form) as ``as_user`` may read them, or why
    there are none (nothing to say for an ended session)."""
    if session["state"] != "active":
        return [], ""
    if not serves(session["hosting"]["state"]):
        return [], "the session's server is not ready yet: " + session["hosting"]["message"]
    try:
        return await _Reader(session, as_user, contents).notebooks(), ""
    except LookupError as e:
        return [], str(e)


class _Reader:
    def __init__(self, session: dict[str, Any], as_user: str, contents: Contents) -> None:
        self.server: ServerKey = (session["server"]["user"], session["server"]["name"] or "")
        self.root = session["root"]
        self.as_user = as_user
        self.contents = contents

    async def notebooks(self) -> list[Notebook]:
        paths = await self._walk("", 0)
        return [await self._load(path) for path in paths[:MAX_NOTEBOOKS]]

    async def _walk(self, relative: str, depth: int) -> list[str]:
        model = await self.contents.directory(self.server, on_server(self.root, relative), self.as_user)
        found: list[str] = []
        for entry in sorted(model.get("content") or [], key=lambda e: e.get("name", "")):
            path = "/".join(p for p in (relative, entry.get("name", "")) if p)
            if entry.get("type") == "notebook":
                found.append(path)
            elif entry.get("type") == "directory" and depth + 1 < MAX_DEPTH:
                found += await self._walk(path, depth + 1)
        return found

    async def _load(self, path: str) -> Notebook:
        try:
            model = await self.contents.notebook(self.server, on_server(self.root, path), self.as_user)
        except LookupError as e:
            return Notebook(path, error=str(e))
        return Notebook(path, summarise(model.get("content") or {}))
