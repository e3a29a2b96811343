"""The instructor's dashboard and one session's activity, with charts."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from markupsafe import Markup
from tornado import web

from ...charts import bucket, timeline_svg
from ...decision import Principal, Standing
from ...manager.activity.overview import SORTS
from .base import PageHandler
from .notebooks import Notebook, session_notebooks


class DashboardPage(PageHandler):
    section = "dashboard"

    @web.authenticated
    async def get(self) -> None:
        actor = await self.viewer()
        arg = self.get_argument
        choice = {"course": arg("course", ""), "activity": arg("activity", ""),
                  "sort": arg("sort", "last_activity"), "order": arg("order", "desc")}
        found = await self.manager.overview.watched(
            actor, choice["course"], choice["activity"], choice["sort"], choice["order"] != "asc")
        await self.render_page("dashboard.html", choice=choice, sorts=SORTS, **found)


class SessionActivityPage(PageHandler):
    section = "dashboard"

    @web.authenticated
    async def get(self, session_id: str) -> None:
        actor = await self.viewer()
        session = await self.manager.sessions.get(actor, session_id)
        events = await self.manager.activity.read(actor, session_id, {"limit": "100000"})
        # a row per person, team members too (a team's grant is each of theirs)
        data = bucket(events, [session["owner"], *session["people"]], now=chart_end(session))
        chart = Markup(timeline_svg(data, f"Activity in {session['title']}")) if data else None
        # cells in order with their text, where the instructor may read them (once joined)
        notebooks, _ = await session_notebooks(self.settings["upstream"], session, actor.name)
        await self.render_page(
            "activity.html", s=session, chart=chart, data=data,
            standing=Standing(Principal(actor.name), session["my_role"], actor.is_admin),
            cells=cell_matrix(events, notebooks),
            refused=sorted((e for e in events if e["kind"] == "refused"),
                           key=lambda e: e["ts"], reverse=True),
            summary=await self.manager.activity.summary(actor, session_id))


def chart_end(session: dict[str, Any]) -> datetime | None:
    """Where the timeline's axis ends: now (None) while a session runs; when it ended
    after that, so an old session's work is not squeezed against weeks of silence."""
    ended = session.get("ended_at") if session.get("state") == "ended" else None
    return datetime.fromisoformat(ended.replace("Z", "+00:00")) if ended else None


def cell_matrix(events: list[dict[str, Any]], notebooks: list[Notebook]) -> list[dict[str, Any]]:
    """Per notebook: which member changed which cell, how often (cells in notebook order)."""
    edits: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for e in events:
        if e["kind"] == "edit" and e["cell_id"]:
            row = edits[e["path"]][e["cell_id"]]
            row[e["user"]] = row.get(e["user"], 0) + e["count"]
    known = {nb.path: nb for nb in notebooks}
    out = []
    for path in sorted(set(edits) | set(known)):
        cells = edits.get(path, {})
        order: list[tuple[str, str, int | None]] = (
            [(c.id, c.preview, c.index + 1) for c in known[path].cells] if path in known else [])
        seen = {cid for cid, _, _ in order}
        order += [(cid, "(no longer in the notebook)" if path in known else "", None)
                  for cid in sorted(cells) if cid not in seen]
        people = sorted({u for row in cells.values() for u in row})
        out.append({"path": path, "people": people,
                    "rows": [{"id": cid, "preview": preview, "number": n, "by": cells.get(cid, {})}
                             for cid, preview, n in order]})
    return out


default_handlers = [
    (r"/dashboard", DashboardPage),
    (r"/dashboard/(?P<session_id>[0-9a-zA-Z]+)", SessionActivityPage),
]
