"""How the service stands, for admins: counts, database and hub health."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select, text, union
from sqlalchemy.orm import Session

from ... import __version__
from ...records import Grant, RTCSession, Server, Team, TeamMember
from ..actor import SCOPE_ADMIN, Actor
from ..context import Context
from ..errors import Forbidden
from ..ports import HostingError
from .presence import PresenceBook


class Status:
    def __init__(self, ctx: Context, presence: PresenceBook) -> None:
        self.ctx = ctx
        self.presence = presence

    async def report(self, actor: Actor) -> dict[str, Any]:
        if not actor.is_admin:
            raise Forbidden(f"the service's status needs the {SCOPE_ADMIN} scope")
        database = await self._database()
        counts = await self.ctx.db.run(_counts) if database["ok"] else {}
        if database["ok"]:
            counts.update(await self.presence.counts())
        return {"version": __version__, "counts": counts, "database": database,
                "hub": await self._hub(),
                "manage_hub_access": self.ctx.hosting.manage_hub_access}

    async def _database(self) -> dict[str, Any]:
        backend = self.ctx.db.engine.dialect.name
        start = time.perf_counter()
        try:
            await self.ctx.db.run(lambda db: db.execute(text("SELECT 1")))
        except Exception as e:  # health is what the page reports, whatever the failure
            return {"ok": False, "backend": backend, "error": f"{type(e).__name__}: {e}"[:300]}
        return {"ok": True, "backend": backend, "latency_ms": _ms_since(start)}

    async def _hub(self) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            running = await self.ctx.directory.active_servers()
        except HostingError as e:
            return {"ok": False, "error": str(e)[:300]}
        return {"ok": True, "latency_ms": _ms_since(start), "running_servers": len(running)}


def _ms_since(start: float) -> float:
    return round(1000 * (time.perf_counter() - start), 1)


def _people_in(sessions: Any) -> Any:
    """The distinct people the grants of ``sessions`` name: users, and each member of
    a team (a team of three is three people, not one grant), but not a session's owner
    in their own session's team, as a session's ``people`` says.  Hub groups are the
    hub's to expand, so they add nobody."""
    granted = select(Grant.principal.label("user_id")).join(RTCSession).where(
        sessions, Grant.kind == "user")
    in_teams = (select(TeamMember.user_id.label("user_id"))
                .join(Grant, (Grant.kind == "team") & (Grant.principal == TeamMember.team_id))
                .join(RTCSession).where(sessions, TeamMember.user_id != RTCSession.owner_id))
    return union(granted, in_teams)  # (UNION, not UNION ALL: each person once)


def _counts(db: Session) -> dict[str, int]:
    def count(query: Any) -> int:
        return int(db.scalar(query) or 0)

    active = RTCSession.state == "active"
    return {
        "sessions_active": count(select(func.count()).select_from(RTCSession).where(active)),
        "sessions_ended": count(select(func.count()).select_from(RTCSession).where(~active)),
        "members": count(select(func.count()).select_from(_people_in(active).subquery())),
        "teams": count(select(func.count()).select_from(Team)),
        "servers_announced": count(select(func.count()).select_from(Server)),
    }
