"""Activity: what members did in a session, aggregated per minute."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ...records import ActivityBatch, ActivityEvent, RTCSession, User, models
from ..access.people import People
from ..actor import SCOPE_ACTIVITY_READ, SCOPE_ACTIVITY_WRITE, SCOPE_ADMIN, Actor, speaks_for
from ..context import Context
from ..errors import Forbidden, Invalid, NotFound
from ..sessions.sessions import Sessions
from ..validate import parse_when
from ..views import iso

KINDS = ("edit", "execute", "refused", "join", "leave", "save")


class Activity:
    def __init__(self, ctx: Context, sessions: Sessions, people: People) -> None:
        self.sessions = sessions
        self.people = people
        self.db = ctx.db

    async def _readable(self, actor: Actor, session_id: str) -> None:
        access = await self.sessions.access(actor, session_id)
        if access.may_read_activity(actor.has(SCOPE_ACTIVITY_READ)):
            return
        raise Forbidden(
            f"reading activity needs manager rights in the session or the {SCOPE_ACTIVITY_READ} scope"
        )

    async def read(self, actor: Actor, session_id: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        await self._readable(actor, session_id)
        since = parse_when(filters.get("since"), "since")
        until = parse_when(filters.get("until"), "until")
        limit = _limit(filters.get("limit"))

        def query(db: Session) -> list[dict[str, Any]]:
            q = (select(ActivityEvent, User.name).join(User, User.id == ActivityEvent.user_id)
                 .where(ActivityEvent.session_id == session_id))
            if since:
                q = q.where(ActivityEvent.minute >= since)
            if until:
                q = q.where(ActivityEvent.minute < until)
            for field, column in (("user", User.name), ("kind", ActivityEvent.kind),
                                  ("path", ActivityEvent.path)):
                if filters.get(field):
                    q = q.where(column == filters[field])
            q = q.order_by(ActivityEvent.minute, ActivityEvent.id).limit(limit)
            return [_event_json(e, name) for e, name in db.execute(q).all()]

        return await self.db.run(query)

    async def summary(self, actor: Actor, session_id: str) -> list[dict[str, Any]]:
        """Per member: counts by kind, distinct cells edited, last seen."""
        events = await self.read(actor, session_id, {"limit": "100000"})
        return summarise(events)

    async def record(self, actor: Actor, session_id: str, events: list[dict[str, Any]],
                     batch: str | None = None) -> int:
        """Store a batch from a shared server; returns how many events were counted.

        A ``batch`` id the session has recorded already counts nothing: the server
        sends a batch again when it cannot know it arrived (it was killed, or the
        answer was lost), and it is counted once."""
        if not (actor.is_admin or any(s.partition("!")[0] == SCOPE_ACTIVITY_WRITE for s in actor.scopes)):
            raise Forbidden(f"recording activity needs the {SCOPE_ACTIVITY_WRITE} scope")
        # one look-up per person, not per event: a batch may hold thousands
        ids = {name: (await self.people.ensure(name)).id for name in {e["user"] for e in events}}
        rows = [_row(session_id, e, ids[e["user"]]) for e in events]

        def store(db: Session) -> int:
            session = _hosted(db, actor, session_id)
            if batch is not None and not _first_time(db, session_id, batch):
                return 0
            _store(db, session, rows)
            return sum(r["count"] for r in rows)

        return await self.db.run(store)

    async def refused(self, session_id: str, user: str, path: str, cell_id: str | None) -> None:
        """Count one attempt the service refused itself, as the session's server counts
        those it refuses: the document API checks the rules before the room sees the
        change, so no server would count it (``path`` below the session's folder)."""
        person = await self.people.ensure(user)
        event = {"ts": iso(models.utcnow()), "user": user, "kind": "refused", "path": path,
                 "cell_id": cell_id or ""}
        row = _row(session_id, event, person.id)

        def store(db: Session) -> None:
            session = db.get(RTCSession, session_id)
            if session is not None:  # (gone meanwhile: nothing to count it in)
                _store(db, session, [row])

        await self.db.run(store)


def _hosted(db: Session, actor: Actor, session_id: str) -> RTCSession:
    """The session, if ``actor`` is the server hosting it (or an rtc admin)."""
    session = db.get(RTCSession, session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r}")
    if not speaks_for(actor, (session.server_user, session.server_name)):
        raise Forbidden(f"only the server hosting session {session_id} (with its own"
                        f" {SCOPE_ACTIVITY_WRITE}) or {SCOPE_ADMIN} may record its activity")
    return session


def _row(session_id: str, event: dict[str, Any], user_id: str) -> dict[str, Any]:
    ts = parse_when(event["ts"], "ts")
    assert ts is not None
    return {
        "session_id": session_id,
        "user_id": user_id,
        "kind": event["kind"],
        "path": event.get("path", ""),
        "cell_id": event.get("cell_id", ""),
        "minute": ts.replace(second=0, microsecond=0),
        "count": event.get("count", 1),
    }


def _limit(raw: str | None) -> int:
    try:
        value = int(raw) if raw else 1000
    except ValueError:
        raise Invalid(f"limit: {raw!r} is not a number") from None
    if not 1 <= value <= 100_000:
        raise Invalid("limit must be between 1 and 100000")
    return value


def _event_json(event: ActivityEvent, user: str) -> dict[str, Any]:
    return {"ts": iso(event.minute), "user": user, "kind": event.kind,
            "path": event.path, "cell_id": event.cell_id or None, "count": event.count}


def _first_time(db: Session, session_id: str, batch: str) -> bool:
    """Note ``batch`` as recorded in the session; False if it was already.  (One
    statement: two deliveries at once cannot both be first.)"""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    made = db.execute(insert(ActivityBatch).values(session_id=session_id, batch_id=batch,
                                                   recorded_at=models.utcnow())
                      .on_conflict_do_nothing(index_elements=["session_id", "batch_id"])
                      .returning(ActivityBatch.id)).first()
    return made is not None


def _store(db: Session, session: RTCSession, rows: list[dict[str, Any]]) -> None:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    for row in rows:
        stmt = insert(ActivityEvent).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["session_id", "user_id", "kind", "path", "cell_id", "minute"],
            set_={"count": ActivityEvent.count + stmt.excluded.count},
        )
        db.execute(stmt)
    if rows:
        latest = max(r["minute"] for r in rows)
        if session.last_activity is None or latest > session.last_activity:
            session.last_activity = latest


def summarise(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"counts": dict.fromkeys(KINDS, 0), "cells": set(), "last": None}
    )
    for e in events:
        entry = per[e["user"]]
        entry["counts"][e["kind"]] += e["count"]
        if e["kind"] == "edit" and e["cell_id"]:
            entry["cells"].add((e["path"], e["cell_id"]))
        entry["last"] = max(filter(None, (entry["last"], e["ts"])))
    return [
        {"user": user, **v["counts"], "cells_edited": len(v["cells"]), "last_active": v["last"]}
        for user, v in sorted(per.items())
    ]
