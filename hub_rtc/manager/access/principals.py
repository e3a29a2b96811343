"""Resolving who a grant or a cell rule names: a hub user, a team or a hub group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...records import Team, models
from ..actor import Actor
from ..context import Context
from ..errors import Conflict, Forbidden, Invalid
from ..validate import check_expiry, parse_when
from .people import People

KINDS = ("user", "team", "group")


@dataclass(frozen=True)
class PrincipalKey:
    """A named principal and the key the records store for it."""

    kind: str
    name: str
    key: str  # user id, team id or group name


ResolvedGrant = tuple[PrincipalKey, str, datetime | None]


def entry_kind(entry: dict[str, Any]) -> tuple[str, str]:
    """The one principal named in ``{"user"|"team"|"group": name, …}``."""
    named = [(k, entry[k]) for k in KINDS if k in entry]
    if len(named) != 1:
        raise Invalid("each member names exactly one of user, team or group")
    return named[0]


class Principals:
    def __init__(self, ctx: Context, people: People) -> None:
        self.ctx = ctx
        self.people = people

    async def resolve(self, kind: str, name: str, *, allow_group: bool = True) -> PrincipalKey:
        if kind == "user":
            await self.people.hub_user(name)
            return PrincipalKey(kind, name, (await self.people.ensure(name)).id)
        if kind == "team":
            team = await self.ctx.db.run(lambda db: Team.find(db, name))
            if team is None:
                raise Invalid(f"no team named {name!r}")
            return PrincipalKey(kind, name, team.id)
        if kind == "group" and allow_group:
            if not await self.ctx.directory.group_exists(name):
                raise Invalid(f"no hub group named {name!r}")
            return PrincipalKey(kind, name, name)
        raise Invalid(f"{kind!r} is not a kind of principal here")

    def check_role(self, actor: Actor, role: str) -> None:
        if actor.is_admin or role in self.ctx.policy.grantable_roles:
            return
        allowed = ", ".join(self.ctx.policy.grantable_roles) or "none"
        raise Forbidden(f"policy: role {role!r} may not be granted (allowed: {allowed})")

    def check_count(self, count: int) -> None:
        limit = self.ctx.policy.max_members_per_session
        if count > limit:
            raise Forbidden(f"policy: a session may have at most {limit} members")

    async def resolve_grant(
        self, actor: Actor, kind: str, name: str, body: dict[str, Any], owner: str
    ) -> ResolvedGrant:
        role = body["role"]
        self.check_role(actor, role)
        if kind == "user" and name == owner:
            raise Invalid(f"{name} owns the session and already has every right")
        expires = parse_when(body.get("expires_at"), "expires_at")
        check_expiry(expires, models.utcnow(), None)
        return await self.resolve(kind, name), role, expires

    async def resolve_all(
        self, actor: Actor, entries: list[dict[str, Any]], owner: str
    ) -> list[ResolvedGrant]:
        """Every member of a new session, or the first reason to refuse them all."""
        named = [entry_kind(e) for e in entries]
        seen: set[tuple[str, str]] = set()
        for pair in named:
            if pair in seen:
                raise Conflict(f"{pair[0]} {pair[1]!r} is listed twice")
            seen.add(pair)
        self.check_count(len(named))
        return [
            await self.resolve_grant(actor, kind, name, entry, owner)
            for (kind, name), entry in zip(named, entries, strict=True)
        ]
