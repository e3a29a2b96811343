"""The instructor's dashboard: the sessions of watched courses, with their activity totals."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...records import ActivityEvent, models
from ..actor import Actor
from ..context import Context
from ..errors import Forbidden, Invalid
from ..sessions.sessions import Sessions
from .activity import Activity

#: how the dashboard may sort; each key names a field of a row
SORTS = ("last_activity", "title", "course", "owner", "edit", "execute", "refused", "members")
#: the "activity" filter: active within this long, or idle for longer
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


class Overview:
    def __init__(self, ctx: Context, sessions: Sessions, activity: Activity) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.activity = activity

    async def watched(self, actor: Actor, course: str = "", activity: str = "",
                      sort: str = "last_activity", descending: bool = True) -> dict[str, Any]:
        """Sessions of the courses ``actor`` watches (every session, for rtc admins)."""
        if sort not in SORTS:
            raise Invalid(f"sort must be one of {', '.join(SORTS)}")
        if activity not in ("", "idle", *WINDOWS):
            raise Invalid("activity must be one of hour, day, week, idle")
        watching = bool(self.ctx.policy.watched_groups(actor.groups))
        if not (watching or actor.is_admin):
            raise Forbidden("the dashboard shows the sessions of the courses you watch as an"
                            " instructor, and policy names none for you")
        which = "watched" if watching else "all"
        rows = await self.sessions.list(actor, which=which, limit=1000)
        courses = sorted({r["course"] for r in rows if r["course"]})
        rows = [r for r in rows if _keeps(r, course, activity, models.utcnow())]
        totals = await self.ctx.db.run(lambda db: _totals(db, [r["id"] for r in rows]))
        for row in rows:
            row.update(totals.get(row["id"], {"edit": 0, "execute": 0, "refused": 0}))
            # people, not grants: a team of three is three; a hub group's members are
            # the hub's to know, so groups are counted beside
            row["member_count"] = len(row["people"])
            row["group_count"] = sum(1 for m in row["members"] if m["kind"] == "group")
        rows.sort(key=lambda r: _sort_key(r, sort), reverse=descending)
        return {"sessions": rows, "courses": courses}


def _keeps(row: dict[str, Any], course: str, activity: str, now: datetime) -> bool:
    if course and row["course"] != course:
        return False
    if not activity:
        return True
    last = row["last_activity"]
    seen = datetime.fromisoformat(last.replace("Z", "+00:00")) if last else None
    recent = seen is not None and now - seen <= WINDOWS.get(activity, WINDOWS["week"])
    return not recent if activity == "idle" else recent


def _sort_key(row: dict[str, Any], sort: str) -> tuple[int, Any]:
    value = row["member_count"] if sort == "members" else row.get(sort)
    return (value is not None, value if value is not None else "")


def _totals(db: Session, session_ids: list[str]) -> dict[str, dict[str, int]]:
    """Edits, runs and refusals per session, in one grouped query."""
    if not session_ids:
        return {}
    rows = db.execute(
        select(ActivityEvent.session_id, ActivityEvent.kind, func.sum(ActivityEvent.count))
        .where(ActivityEvent.session_id.in_(session_ids),
               ActivityEvent.kind.in_(("edit", "execute", "refused")))
        .group_by(ActivityEvent.session_id, ActivityEvent.kind)
    ).all()
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"edit": 0, "execute": 0, "refused": 0})
    for session_id, kind, count in rows:
        out[session_id][kind] = int(count or 0)
    return dict(out)
