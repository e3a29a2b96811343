"""Instructors join the sessions of courses they watch, read-only, and leave again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...records import RTCSession, Watcher
from ..access.people import People
from ..actor import Actor
from ..context import Context
from ..errors import Conflict, Forbidden, NotFound
from ..hosting.hosting import Hosting
from ..hosting.shares import Shares
from ..notify import WATCHER_LEFT
from .sessions import Sessions


class Watching:
    def __init__(self, ctx: Context, sessions: Sessions, people: People, hosting: Hosting,
                 shares: Shares) -> None:
        self.sessions = sessions
        self.people = people
        self.hosting = hosting
        self.shares = shares
        self.db = ctx.db

    async def join(self, actor: Actor, session_id: str) -> dict[str, Any]:
        """Let an observer into the session's server, read-only (the role decides that)."""
        access = await self.sessions.access(actor, session_id)
        if access.role is None:  # an rtc admin outside the session
            raise Forbidden("only instructors watching the session's course may join it read-only")
        if not access.is_observer:
            raise Conflict(f"{actor.name} is in session {session_id} already, as {access.role}")
        user_id = await self.people.user_id_of(actor)
        server = await self.db.run(lambda db: _add(db, session_id, user_id))
        await self.shares.reconcile(server)
        return await self.sessions.json_of(session_id, access.role)

    async def leave(self, actor: Actor, session_id: str) -> None:
        await self.sessions.access(actor, session_id)
        user_id = await self.people.user_id_of(actor)
        await self.db.run(lambda db: _remove(db, session_id, user_id))
        await self.hosting.tell([session_id], [actor.name], WATCHER_LEFT)


def _add(db: Session, session_id: str, user_id: str | None) -> tuple[str, str]:
    row = db.get(RTCSession, session_id)
    assert row is not None and user_id is not None  # access() proved both
    if row.state != "active":
        raise Conflict(f"session {session_id} has ended")
    if db.get(Watcher, (session_id, user_id)) is None:
        db.add(Watcher(session_id=session_id, user_id=user_id))
    return row.server_user, row.server_name


def _remove(db: Session, session_id: str, user_id: str | None) -> None:
    row = db.scalar(select(Watcher).where(Watcher.session_id == session_id,
                                          Watcher.user_id == user_id))
    if row is None:
        raise NotFound(f"you have not joined session {session_id}")
    db.delete(row)
