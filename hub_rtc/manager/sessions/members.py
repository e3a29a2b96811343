"""Members of a session: grant, change and withdraw roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...records import Grant, RTCSession, Team, User, hold
from ...records.queries import audience
from ..access.people import People
from ..access.principals import PrincipalKey, Principals, ResolvedGrant
from ..actor import Actor
from ..context import Context
from ..errors import NotFound
from ..hosting.hosting import Hosting
from ..hosting.shares import Shares
from ..notify import MEMBER_ADDED, MEMBER_REMOVED, ROLE_CHANGED, Enforcement
from .sessions import Sessions


class Members:
    def __init__(self, ctx: Context, sessions: Sessions, principals: Principals, people: People,
                 hosting: Hosting, shares: Shares) -> None:
        self.sessions = sessions
        self.principals = principals
        self.people = people
        self.hosting = hosting
        self.shares = shares
        self.db = ctx.db

    async def list(self, actor: Actor, session_id: str) -> list[dict[str, Any]]:
        await self.sessions.access(actor, session_id)
        return (await self.sessions.json_of(session_id, None))["members"]

    async def put(
        self, actor: Actor, session_id: str, kind: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Grant or change a role; returns the member and whether it is new.

        The member carries ``enforced`` and ``pending_servers``: a role that
        shrank is answered once the session's servers confirm it is in force.
        """
        await self.sessions.manageable(actor, session_id)
        owner, host, server = await self.db.run(lambda db: _where(db, session_id))
        grant = await self.principals.resolve_grant(actor, kind, name, body, owner)
        if host == "owner" and not await self.db.run(lambda db: _find(db, session_id, grant[0])):
            # letting someone new in: the owner's server must run the extension
            await self.hosting.require_announced(server)
        granter = await self.people.user_id_of(actor)
        created = await self.db.run(lambda db: self._upsert(db, session_id, grant, granter))
        if created:  # access only grew: the shares follow
            await self.shares.reconcile(server)
        # The servers hear of a new member too: a new runner makes the session's
        # files answer to what a runner may change (hub_rtc.decision.file).
        who = await self.db.run(lambda db: audience(db, grant[0].kind, grant[0].key))
        enforcement = await self.hosting.tell(
            [session_id], who, MEMBER_ADDED if created else ROLE_CHANGED)
        member = await self._member(session_id, kind, name)
        return {**member, **enforcement.json()}, created

    def _upsert(
        self, db: Session, session_id: str, grant: ResolvedGrant, by: str | None
    ) -> bool:
        key, role, expires = grant
        hold(db, RTCSession, session_id)  # two grants at once: counted, or found, in turn
        row = _find(db, session_id, key)
        if row is None:
            self.principals.check_count(_count(db, session_id) + 1)
            db.add(Grant(session_id=session_id, kind=key.kind, principal=key.key,
                         role=role, expires_at=expires, granted_by_id=by))
            return True
        row.role, row.expires_at, row.granted_by_id = role, expires, by
        return False

    async def _member(self, session_id: str, kind: str, name: str) -> dict[str, Any]:
        members = (await self.sessions.json_of(session_id, None))["members"]
        return next(m for m in members if m["kind"] == kind and m["name"] == name)

    async def delete(self, actor: Actor, session_id: str, kind: str, name: str) -> Enforcement:
        """Withdraw a role; answered once the session's servers confirm (or say which did not)."""
        await self.sessions.manageable(actor, session_id)
        key = await self._existing_key(kind, name)

        def remove(db: Session) -> list[str] | None:
            row = _find(db, session_id, key) if key else None
            if row is None:
                raise NotFound(f"{kind} {name!r} is not a member of session {session_id}")
            who = audience(db, row.kind, row.principal)
            db.delete(row)
            return who

        who = await self.db.run(remove)
        return await self.hosting.tell([session_id], who, MEMBER_REMOVED)

    async def _existing_key(self, kind: str, name: str) -> PrincipalKey | None:
        """The stored key of a principal, without asking the hub (it may be gone)."""
        if kind == "group":
            return PrincipalKey("group", name, name)
        if kind == "user":
            user = await self.db.run(lambda db: User.find(db, name))
            return PrincipalKey("user", name, user.id) if user else None
        team = await self.db.run(lambda db: Team.find(db, name))
        return PrincipalKey("team", name, team.id) if team else None


def _find(db: Session, session_id: str, key: PrincipalKey) -> Grant | None:
    return db.scalar(
        select(Grant).where(
            Grant.session_id == session_id, Grant.kind == key.kind, Grant.principal == key.key
        )
    )


def _count(db: Session, session_id: str) -> int:
    return db.scalar(select(func.count()).select_from(Grant).where(Grant.session_id == session_id)) or 0


def _where(db: Session, session_id: str) -> tuple[str, str, tuple[str, str]]:
    """Owner name, host and server of a session."""
    row = db.get(RTCSession, session_id)
    assert row is not None  # manageable() already proved it exists
    return row.owner.name, row.host, (row.server_user, row.server_name)
