"""The notebooks of a session and their cells, for the pages: the domain's list
(:mod:`hub_rtc.manager.documents.listing`), read from the session's server
through the upstream client's contents API as the person viewing the page."""

from __future__ import annotations

from typing import Any

from ...adapters.probe import UpstreamContents
from ...adapters.upstream import Upstream
from ...manager.documents import listing
from ...manager.documents.listing import CellSummary, Notebook

__all__ = ["CellSummary", "Notebook", "session_notebooks"]


async def session_notebooks(upstream: Upstream, session: dict[str, Any],
                            as_user: str) -> tuple[list[Notebook], str]:
    """The notebooks of an active session as ``as_user`` may read them, or why there are none."""
    return await listing.session_notebooks(session, as_user, UpstreamContents(upstream))
