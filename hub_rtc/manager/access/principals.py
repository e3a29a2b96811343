"""Resolving who a grant or a cell rule names: a hub user, a team or a hub group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...decision import PRINCIPAL_KINDS, PrincipalKind, grants
from ...records import Team, models
from ..actor import Actor
from ..context import Context
from ..errors import Conflict, Forbidden, Invalid
from ..validate import check_expiry, parse_when
from .people import People


@dataclass(frozen=True)
class PrincipalKey:
    """A named principal and the key the records store for it."""

    kind: PrincipalKind
    name: str
    key: str  # user id, team id or group name


ResolvedGrant = tuple[PrincipalKey, str, datetime | None]


def entry_kind(entry: dict[str, Any]) -> tuple[PrincipalKind, str]:
    """The one principal named in ``{"user"|"team"|"group": name, …}``."""
    named = [(k, entry[k]) for k in PRINCIPAL_KINDS if k in entry]
    if len(named) != 1:
        raise Invalid("each member names exactly one of user, team or group")
    return named[0]


class Principals:
    def __init__(self, ctx: Context, people: People) -> None:
        self.ctx = ctx
        self.people = people

    async def resolve(self, kind: str, name: str,
                      kinds: tuple[PrincipalKind, ...] = PRINCIPAL_KINDS) -> PrincipalKey:
        """The records' key of a principal of one of ``kinds``; 422 if there is none."""
        if kind == "user" and kind in kinds:
            await self.people.hub_user(name)
            return PrincipalKey("user", name, (await self.people.ensure(name)).id)
        if kind == "team" and kind in kinds:
            team = await self.ctx.db.run(lambda db: Team.find(db, name))
            if team is None:
                raise Invalid(f"no team named {name!r}")
            return PrincipalKey("team", name, team.id)
        if kind == "group" and kind in kinds:
            if not await self.ctx.directory.group_exists(name):
                raise Invalid(f"no hub group named {name!r}")
            return PrincipalKey("group", name, name)
        raise Invalid(f"{kind!r} is not a kind of principal here")

    def check_role(self, actor: Actor, role: str) -> None:
        _refuse(grants.role_refusal(role, actor.is_admin, self.ctx.policy.decision_view()))

    def check_count(self, count: int) -> None:
        _refuse(grants.members_refusal(count, self.ctx.policy.decision_view()))

    async def resolve_grant(
        self, actor: Actor, kind: str, name: str, body: dict[str, Any], owner: str
    ) -> ResolvedGrant:
        role = body["role"]
        self.check_role(actor, role)
        owned = grants.owner_grant_refusal(kind, name, owner)
        if owned is not None:
            raise Invalid(owned)
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


def _refuse(reason: str | None) -> None:
    """The decision's refusal, as this operation's."""
    if reason is not None:
        raise Forbidden(reason)
