"""Sessions: create, list, read, change and end them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from ...decision import Principal, Resource, SessionView, Standing, creation, effective_role
from ...records import Grant, RTCSession, Team, User, hold, models
from ...records.queries import online
from ..access.decisions import Decisions
from ..access.people import People
from ..access.principals import Principals
from ..actor import SCOPE_ADMIN, Actor
from ..context import Context
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..hosting.hosting import Hosting
from ..hosting.shares import Shares
from ..notify import SESSION_ENDED, Enforcement
from ..validate import check_expiry, folder, parse_when
from ..views import load_view, session_json

ACCOUNT_PREFIX = "rtc-"
LISTS = ("visible", "mine", "shared", "watched", "all")


class Sessions:
    def __init__(self, ctx: Context, people: People, principals: Principals, hosting: Hosting,
                 shares: Shares, decisions: Decisions) -> None:
        self.ctx = ctx
        self.people = people
        self.decisions = decisions
        self.principals = principals
        self.hosting = hosting
        self.shares = shares

    # -- access ------------------------------------------------------------

    async def access(self, actor: Actor, session_id: str) -> Standing:
        """The actor's standing in a session; 404 if none, 403 if outside their reach
        (from the records kept for decisions, while they stand)."""
        found = await self.decisions.records(actor, Resource(session_id))
        return self.standing(actor, found.principal, found.view, session_id)

    def standing(self, actor: Actor, principal: Principal, view: SessionView | None,
                 session_id: str) -> Standing:
        """:meth:`access` from records already loaded (``view``: None if no such session)."""
        if view is None:
            raise NotFound(f"no session {session_id!r}")
        role = effective_role(principal, view, self.ctx.policy.decision_view(), models.utcnow())
        standing = Standing(principal, role, actor.is_admin)
        if not standing.sees:
            raise Forbidden(f"session {session_id} is not shared with {actor.name}")
        return standing

    async def manageable(self, actor: Actor, session_id: str) -> Standing:
        """A standing that may change the session: manager, owner or rtc admin."""
        access = await self.access(actor, session_id)
        if not access.can_manage:
            raise Forbidden(f"only the owner and managers may change session {session_id}")
        await self.ctx.db.run(lambda db: _require_active(db, session_id))
        return access

    # -- reading -------------------------------------------------------------

    async def get(self, actor: Actor, session_id: str) -> dict[str, Any]:
        """The session as the actor may see it: their standing from the kept records,
        then the answer in one transaction."""
        access = await self.access(actor, session_id)
        return await self.json_of(session_id, access.role)

    async def json_of(self, session_id: str, role: str | None) -> dict[str, Any]:
        """The API form of a session, with the caller's role in it."""
        base, kernels = self.ctx.hub_base_url, self.ctx.policy.kernel_isolation
        return await self.ctx.db.run(
            lambda db: session_json(db, _get(db, session_id), role, base, kernel_policy=kernels)
        )

    async def list(
        self, actor: Actor, which: str = "visible", state: str | None = None,
        limit: int = 200, offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Sessions the actor owns, shares or watches (``which`` narrows; admins may ask ``all``)."""
        if which not in LISTS:
            raise Invalid(f"which must be one of {', '.join(LISTS)}")
        if state not in (None, "active", "ended"):
            raise Invalid("state must be active or ended")
        if which == "all" and not actor.is_admin:
            raise Forbidden(f"listing every session needs the {SCOPE_ADMIN} scope")
        principal = await self.people.principal(actor)
        policy, base = self.ctx.policy.decision_view(), self.ctx.hub_base_url
        kernels = self.ctx.policy.kernel_isolation

        def query(db: Session) -> list[dict[str, Any]]:
            rows = _visible(db, principal, which, state, limit, offset)
            online_now = online(db, [row.id for row in rows])  # one query, not one per row
            out = []
            for row in rows:
                view = load_view(db, row.id, principal)
                assert view is not None
                role = effective_role(principal, view, policy, models.utcnow())
                out.append(session_json(db, row, role, base, online_now, kernels))
            return out

        return await self.ctx.db.run(query)

    # -- creating ------------------------------------------------------------

    def may_create(self, actor: Actor) -> bool:
        """Whether ``actor`` may create sessions (what the hub UI and ``/me`` show)."""
        return creation.may_create(actor.name, actor.groups, actor.is_admin,
                                self.ctx.policy.decision_view())

    async def create(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        owner = await self.people.owner_record(actor)
        policy = self.ctx.policy.decision_view()
        _refuse(creation.creation_refusal(actor.name, actor.groups, actor.is_admin, policy))
        host = creation.chosen_host(body.get("host"), policy)
        _refuse(creation.host_refusal(host, actor.is_admin, policy))
        values = self._session_values(actor, body, host)
        values["course"] = await self._course(actor, body.get("course"))
        grants = await self.principals.resolve_all(actor, body.get("members", []), owner.name)
        if host == "owner":
            await self.hosting.require_announced((values["server_user"], values["server_name"]))
        values["hosting_state"], values["hosting_message"] = self.hosting.initial_state(host)

        def insert(db: Session) -> str:
            hold(db, User, owner.id)  # two creates at once count one after the other
            _refuse(creation.owned_refusal(_active_owned(db, owner.id), actor.is_admin, policy))
            row = RTCSession(owner_id=owner.id, **values)
            db.add(row)
            db.flush()
            if host == "account":
                row.server_user = ACCOUNT_PREFIX + row.id
            for key, role, expires in grants:
                db.add(Grant(session_id=row.id, kind=key.kind, principal=key.key,
                             role=role, expires_at=expires, granted_by_id=owner.id))
            return row.id

        session_id = await self.ctx.db.run(insert)
        if host == "account":
            self.hosting.launch(session_id)
        else:
            await self.shares.reconcile((values["server_user"], values["server_name"]))
        return await self.json_of(session_id, "owner")

    def _session_values(self, actor: Actor, body: dict[str, Any], host: str) -> dict[str, Any]:
        now, policy = models.utcnow(), self.ctx.policy.decision_view()
        expires = parse_when(body.get("expires_at"), "expires_at")
        check_expiry(expires, now, creation.lifetime_limit(actor.is_admin, policy))
        if expires is None:
            expires = creation.default_expiry(now, policy)
        if host == "account" and body.get("server"):
            raise Invalid("server: a dedicated session server has no named server to choose")
        return {
            "title": body["title"].strip(),
            "host": host,
            "server_user": actor.name,  # replaced by the account name for host=account
            "server_name": body.get("server", ""),
            "root": folder(body.get("root", "")),
            "expires_at": expires,
            "last_activity": now,
        }

    async def _course(self, actor: Actor, course: str | None) -> str | None:
        """The hub group whose instructors may watch the session.

        Unset: the one watched group the owner is in, if exactly one.
        """
        if course is None:
            return creation.default_course(actor.groups, self.ctx.policy.courses())
        _refuse(creation.course_refusal(course, actor.name, actor.groups, actor.is_admin))
        if not await self.ctx.directory.group_exists(course):
            raise Invalid(f"course: no hub group named {course!r}")
        return course

    # -- changing ------------------------------------------------------------

    async def update(self, actor: Actor, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
        access = await self.manageable(actor, session_id)
        changes: dict[str, Any] = {}
        if "title" in body:
            changes["title"] = body["title"].strip()
        if "expires_at" in body:
            expires = parse_when(body["expires_at"], "expires_at")
            limit = creation.lifetime_limit(actor.is_admin, self.ctx.policy.decision_view())
            check_expiry(expires, models.utcnow(), limit)
            changes["expires_at"] = expires

        def apply(db: Session) -> None:
            row = _get(db, session_id)
            for key, value in changes.items():
                setattr(row, key, value)

        await self.ctx.db.run(apply)
        if "expires_at" in changes:
            await self.hosting.revive(session_id)
        return await self.json_of(session_id, access.role)

    async def end(self, actor: Actor, session_id: str) -> Enforcement:
        """End a session: nobody reaches it any more, its records stay; answered once
        its server confirms (or says which did not)."""
        access = await self.access(actor, session_id)
        if not access.may_end:
            raise Forbidden(f"only the owner may end session {session_id}")

        def apply(db: Session) -> bool:
            row = _get(db, session_id)
            if row.state == "ended":
                return False
            row.state, row.ended_at = "ended", models.utcnow()
            return True

        if await self.ctx.db.run(apply):
            return await self.hosting.stop(session_id, "the session ended; nobody is let in",
                                           SESSION_ENDED)
        return Enforcement()


def _refuse(reason: str | None) -> None:
    """The decision's refusal, as this operation's."""
    if reason is not None:
        raise Forbidden(reason)


def _get(db: Session, session_id: str) -> RTCSession:
    row = db.get(RTCSession, session_id)
    if row is None:
        raise NotFound(f"no session {session_id!r}")
    return row


def _require_active(db: Session, session_id: str) -> None:
    if _get(db, session_id).state != "active":
        raise Conflict(f"session {session_id} has ended and can no longer change")


def _active_owned(db: Session, owner_id: str) -> int:
    return db.scalar(
        select(func.count()).select_from(RTCSession).where(
            RTCSession.owner_id == owner_id, RTCSession.state == "active"
        )
    ) or 0


def _visible(
    db: Session, principal: Principal, which: str, state: str | None, limit: int, offset: int
) -> list[RTCSession]:
    user_id = select(User.id).where(User.name == principal.name).scalar_subquery()
    team_ids = select(Team.id).where(Team.name.in_(principal.teams))
    shared = select(Grant.session_id).where(
        or_(
            (Grant.kind == "user") & (Grant.principal == user_id),
            (Grant.kind == "team") & Grant.principal.in_(team_ids),
            (Grant.kind == "group") & Grant.principal.in_(principal.groups),
        )
    )
    conditions: dict[str, ColumnElement[bool]] = {
        "mine": RTCSession.owner_id == user_id,
        "shared": RTCSession.id.in_(shared),
        "watched": RTCSession.course.in_(principal.watches),
    }
    where: ColumnElement[bool]
    if which == "all":
        where = RTCSession.id.is_not(None)
    elif which in conditions:
        where = conditions[which]
    else:
        where = or_(*conditions.values())
    query = select(RTCSession).where(where)
    if state:
        query = query.where(RTCSession.state == state)
    query = query.order_by(RTCSession.created.desc(), RTCSession.id).limit(limit).offset(offset)
    return list(db.scalars(query))
