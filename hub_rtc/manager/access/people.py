"""Users and their persistent ids, identity, and the principal a decision reads."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...decision import Principal
from ...records import Team, TeamMember, User
from ..actor import Actor
from ..context import Context
from ..errors import Forbidden, Invalid
from ..ports import HubUser

# Colours readable on white and distinct from each other (Okabe-Ito plus a few).
_PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
    "#56B4E9", "#8E44AD", "#2E7D32", "#C0392B", "#5D6D7E",
)


def colour_for(user_id: str) -> str:
    """A stable colour per persistent id, so cursors keep their colour across renames."""
    digest = hashlib.sha256(user_id.encode()).digest()
    return _PALETTE[digest[0] % len(_PALETTE)]


def initials_of(display_name: str) -> str:
    """Up to two letters for a cursor badge: "Bea Smith" -> "BS", "bea" -> "B"."""
    words = [w for w in re.split(r"[\s._-]+", display_name) if w]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def identity_of(user: User) -> dict[str, str]:
    display = user.display_name or user.name
    return {
        "id": user.id,
        "name": user.name,
        "display_name": display,
        "initials": initials_of(display),
        "color": colour_for(user.id),
    }


class People:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def hub_user(self, name: str) -> HubUser:
        """The hub user ``name``; :class:`Invalid` if the hub has none."""
        found = await self.ctx.directory.user(name)
        if found is None:
            raise Invalid(f"no hub user named {name!r}")
        return found

    async def ensure(self, name: str) -> User:
        """The record for hub user ``name``, created (or renamed) on first sight."""
        known = await self.ctx.db.run(lambda db: User.find(db, name))
        return known or await self._first_sight(name)

    async def _first_sight(self, name: str) -> User:
        hub = await self.ctx.directory.user(name)
        created = hub.created if hub else None
        renamed_from = await self._renamed_from(name, created)
        try:
            return await self.ctx.db.run(lambda db: _ensure(db, name, created, renamed_from))
        except IntegrityError:  # a concurrent first request of theirs made it meanwhile
            known = await self.ctx.db.run(lambda db: User.find(db, name))
            if known is None:
                raise
            return known

    async def _renamed_from(self, name: str, created: object) -> str | None:
        """The old name of a renamed user: same hub creation time, old name gone."""
        if created is None:
            return None

        def lookup(db: Session) -> str | None:
            if User.find(db, name):
                return None
            old = db.scalar(select(User).where(User.hub_created == created))
            return old.name if old else None

        old_name = await self.ctx.db.run(lookup)
        # fresh: a cached answer from before the rename would still show the old name
        if old_name and await self.ctx.directory.user(old_name, fresh=True) is None:
            return old_name
        return None

    async def principal(self, actor: Actor) -> Principal:
        """What the decision knows of ``actor``: hub groups, teams, watched groups."""
        found = await self.ctx.db.run(lambda db: self.principal_in(db, actor))
        if found is None:
            await self._first_sight(actor.name)
            return self._principal(actor, frozenset())
        return found

    def principal_in(self, db: Session, actor: Actor) -> Principal | None:
        """:meth:`principal` inside a transaction; None for a user never seen before."""
        if actor.kind != "user":
            return Principal(name=f"{actor.kind}:{actor.name}")
        teams = _teams_if_known(db, actor.name)
        return None if teams is None else self._principal(actor, teams)

    def in_force(self, actor: Actor, kept: Principal) -> Principal:
        """A principal loaded earlier, under the policy in force now (whom it watches)."""
        return self._principal(actor, kept.teams) if actor.kind == "user" else kept

    def _principal(self, actor: Actor, teams: frozenset[str]) -> Principal:
        return Principal(
            name=actor.name,
            groups=actor.groups,
            teams=teams,
            watches=self.ctx.policy.watched_groups(actor.groups),
        )

    async def identity(self, name: str) -> dict[str, str]:
        return identity_of(await self.ensure(name))

    async def user_id_of(self, actor: Actor) -> str | None:
        """The persistent id of a user actor; None for services, which own nothing."""
        return (await self.ensure(actor.name)).id if actor.kind == "user" else None

    async def owner_record(self, actor: Actor) -> User:
        """The record of an actor who is about to own something."""
        if actor.kind != "user":
            raise Forbidden(f"{actor.kind} {actor.name} cannot own sessions or teams; act as a user")
        return await self.ensure(actor.name)


def _ensure(db: Session, name: str, created: object, renamed_from: str | None) -> User:
    user = User.find(db, name)
    if user is None and renamed_from:
        user = User.find(db, renamed_from)
        if user is not None:
            user.name = name
    if user is None:
        user = User(name=name, hub_created=created)
        db.add(user)
        db.flush()
    elif user.hub_created is None and created is not None:
        user.hub_created = created  # type: ignore[assignment]
    return user


def _teams_if_known(db: Session, name: str) -> frozenset[str] | None:
    """Team names of user ``name`` (one query), or None if the service never saw them."""
    found = person_in(db, name)
    return None if found is None else found[1]


def person_in(db: Session, name: str) -> tuple[User, frozenset[str]] | None:
    """The record of hub user ``name`` and their team names, in one query; None if never seen."""
    rows = db.execute(
        select(User, Team.name)
        .outerjoin(TeamMember, TeamMember.user_id == User.id)
        .outerjoin(Team, Team.id == TeamMember.team_id)
        .where(User.name == name)
    ).all()
    if not rows:
        return None
    return rows[0][0], frozenset(team for _, team in rows if team is not None)
