"""Teams the service keeps: a name, an owner and members, grantable as one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ...decision.teams import owns_team, sees_team
from ...records import CellRule, CellRuleWriter, Grant, Team, TeamMember, User
from ..access.people import People
from ..actor import Actor
from ..context import Context
from ..errors import Conflict, Forbidden, NotFound
from ..hosting.hosting import Hosting
from ..notify import TEAM_CHANGED, Enforcement
from ..views import iso


class Teams:
    def __init__(self, ctx: Context, people: People, hosting: Hosting) -> None:
        self.ctx = ctx
        self.people = people
        self.hosting = hosting
        self.db = ctx.db

    async def list(self, actor: Actor, everyone: bool = False) -> list[dict[str, Any]]:
        if everyone and not actor.is_admin:
            raise Forbidden("listing every team needs the custom:rtc:admin scope")
        me = await self.people.user_id_of(actor)
        return await self.db.run(lambda db: [_json(db, t) for t in _visible(db, me, everyone)])

    async def get(self, actor: Actor, name: str) -> dict[str, Any]:
        me = await self.people.user_id_of(actor)

        def read(db: Session) -> dict[str, Any]:
            team = _get(db, name)
            if not sees_team(me, team.owner_id, [m.user_id for m in team.members], actor.is_admin):
                raise Forbidden(f"team {name!r} is not visible to {actor.name}")
            return _json(db, team)

        return await self.db.run(read)

    async def create(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"].strip()
        owner = await self.people.owner_record(actor)
        users = [await self._user_id(n) for n in dict.fromkeys(body.get("members", []))]

        def insert(db: Session) -> dict[str, Any]:
            if Team.find(db, name):
                raise Conflict(f"a team named {name!r} already exists")
            team = Team(name=name, owner_id=owner.id)
            team.members = [TeamMember(user_id=u) for u in users]
            db.add(team)
            db.flush()
            return _json(db, team)

        return await self.db.run(insert)

    async def _user_id(self, name: str) -> str:
        await self.people.hub_user(name)
        return (await self.people.ensure(name)).id

    async def delete(self, actor: Actor, name: str) -> Enforcement:
        """Delete a team; its grants and cell-rule assignments go with it."""
        await self._owned(actor, name)

        def remove(db: Session) -> tuple[list[str], list[str]]:
            team = _get(db, name)
            touched = _sessions_naming(db, team.id), [m.user.name for m in team.members]
            db.execute(delete(Grant).where(Grant.kind == "team", Grant.principal == team.id))
            db.execute(delete(CellRuleWriter).where(
                CellRuleWriter.kind == "team", CellRuleWriter.principal == team.id))
            db.delete(team)
            return touched

        sessions, members = await self.db.run(remove)
        return await self.hosting.tell(sessions, members, TEAM_CHANGED)

    async def put_member(self, actor: Actor, name: str, user: str) -> bool:
        """Add ``user`` to the team; True if they were not in it yet."""
        await self._owned(actor, name)
        user_id = await self._user_id(user)

        def add(db: Session) -> bool:
            team = _get(db, name)
            if any(m.user_id == user_id for m in team.members):
                return False
            team.members.append(TeamMember(user_id=user_id))
            return True

        added = await self.db.run(add)
        if added:
            await self._changed(name, user)
        return added

    async def _changed(self, team: str, user: str) -> Enforcement:
        """``user`` joined or left ``team``: sessions naming the team hear of it."""
        sessions = await self.db.run(lambda db: _sessions_naming(db, _get(db, team).id))
        return await self.hosting.tell(sessions, [user], TEAM_CHANGED)

    async def delete_member(self, actor: Actor, name: str, user: str) -> Enforcement:
        await self._owned(actor, name)

        def remove(db: Session) -> None:
            team = _get(db, name)
            found = [m for m in team.members if m.user.name == user]
            if not found:
                raise NotFound(f"{user!r} is not in team {name!r}")
            team.members.remove(found[0])

        await self.db.run(remove)
        return await self._changed(name, user)

    async def _owned(self, actor: Actor, name: str) -> None:
        me = await self.people.user_id_of(actor)
        team = await self.db.run(lambda db: _get(db, name))
        if not owns_team(me, team.owner_id, actor.is_admin):
            raise Forbidden(f"only the owner of team {name!r} may change it")


def _get(db: Session, name: str) -> Team:
    team = Team.find(db, name)
    if team is None:
        raise NotFound(f"no team named {name!r}")
    return team


def _sessions_naming(db: Session, team_id: str) -> list[str]:
    """Sessions with a grant to the team or a cell assigned to it."""
    granted = select(Grant.session_id).where(Grant.kind == "team", Grant.principal == team_id)
    assigned = (select(CellRule.session_id).join(CellRuleWriter, CellRuleWriter.rule_id == CellRule.id)
                .where(CellRuleWriter.kind == "team", CellRuleWriter.principal == team_id))
    return sorted(set(db.scalars(granted)) | set(db.scalars(assigned)))


def _visible(db: Session, user_id: str | None, everyone: bool) -> list[Team]:
    query = select(Team).order_by(Team.name)
    if not everyone:
        mine = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
        query = query.where((Team.owner_id == user_id) | Team.id.in_(mine))
    return list(db.scalars(query))


def _json(db: Session, team: Team) -> dict[str, Any]:
    names = sorted(db.scalars(
        select(User.name).join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team.id)
    ))
    return {"name": team.name, "owner": team.owner.name, "members": names,
            "created": iso(team.created)}
