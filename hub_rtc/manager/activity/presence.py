"""Presence: who has a session's documents open right now, as its server reports.

The shared server knows its open room connections; every few seconds (and
soon after someone joins or leaves) it reports, per session it hosts, who
is connected.  A report replaces what the server said before about those
sessions.  Rows that stopped being refreshed count for nobody: a server that
stops or loses the service must not leave people "online" for ever.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ...records import Presence, RTCSession, Server, models
from ...records.queries import FRESH_FOR
from ..access.people import People
from ..actor import Actor
from ..context import Context
from ..errors import Forbidden
from ..hosting.servers import server_of
from ..ports import ServerKey


class PresenceBook:
    def __init__(self, ctx: Context, people: People) -> None:
        self.ctx = ctx
        self.people = people

    async def report(self, caller: Actor, body: dict[str, Any]) -> int:
        """Store a server's report; returns how many people it says are online."""
        server = server_of(caller, body["server_name"], body.get("server_user"))
        sessions: dict[str, dict[str, int]] = body["sessions"]
        names = {name for users in sessions.values() for name in users}
        ids = {name: (await self.people.ensure(name)).id for name in names}
        await self.ctx.db.run(lambda db: _replace(db, server, sessions, ids))
        return sum(1 for users in sessions.values() for n in users.values() if n > 0)

    async def counts(self) -> dict[str, int]:
        """For the admin page: people online, sessions with someone in, open room sockets."""
        return await self.ctx.db.run(_counts)


def _replace(db: Session, server: ServerKey, sessions: dict[str, dict[str, int]],
             ids: dict[str, str]) -> None:
    hosted = set(db.scalars(select(RTCSession.id).where(
        RTCSession.id.in_(list(sessions)), RTCSession.server_user == server[0],
        RTCSession.server_name == server[1])))
    foreign = sorted(set(sessions) - hosted)
    if foreign:  # a server speaks only for the sessions it hosts
        raise Forbidden(f"sessions {', '.join(foreign)} are not hosted on this server")
    db.execute(delete(Presence).where(Presence.session_id.in_(list(hosted))))
    now = models.utcnow()
    # a report is a sign of life too (the admin page's "last seen")
    db.execute(update(Server).where(Server.user == server[0], Server.name == server[1])
               .values(last_seen=now))
    for session_id, users in sessions.items():
        for name, rooms in users.items():
            if rooms > 0:
                db.add(Presence(session_id=session_id, user_id=ids[name], rooms=rooms, seen_at=now))


def _counts(db: Session) -> dict[str, int]:
    since = models.utcnow() - FRESH_FOR
    fresh = Presence.seen_at >= since
    people = db.scalar(select(func.count(func.distinct(Presence.user_id))).where(fresh)) or 0
    live = db.scalar(select(func.count(func.distinct(Presence.session_id))).where(fresh)) or 0
    sockets = db.scalar(select(func.coalesce(func.sum(Presence.rooms), 0)).where(fresh)) or 0
    return {"people_online": int(people), "live_sessions": int(live),
            "room_connections": int(sockets)}
