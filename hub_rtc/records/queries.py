"""Read queries over the records: what the managers ask the database, in one place.

Every function takes an open ``Session`` and only reads.  The managers shape what
comes back (into the decision's views, the API's JSON, the shares to make); nothing
here decides anything.  Time comes from ``models.utcnow`` so tests can travel in time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session, selectinload

from . import models
from .models import CellRule, Grant, HubShare, Presence, RTCSession, Team, TeamMember, User, Watcher

__all__ = [
    "FRESH_FOR", "Hosted", "Pair", "ServerKey", "audience", "cell_rule", "grant_rows", "grants_naming",
    "hosted_on", "hosted_sessions", "letting_in", "live", "online", "path_cell_rules", "principal_names",
    "recorded_shares", "servers_of", "session_and_owner", "team_members", "teams_named",
    "unfinished", "user_name", "watcher_names", "watchers_of",
]

#: a presence report older than this says nothing any more (servers report every ~10 s)
FRESH_FOR = timedelta(seconds=30)
#: a server as the hub names it: (user, server name; "" for the default server)
ServerKey = tuple[str, str]
#: whom a share names, as the hub knows them: ("user", hub name) or ("group", hub group)
Pair = tuple[str, str]


def live(expires_at: datetime | None, now: datetime) -> bool:
    """Whether something expiring at ``expires_at`` (None: never) still holds at ``now``."""
    return expires_at is None or expires_at > now


# -- people ------------------------------------------------------------------------


def user_name(db: Session, user_id: str) -> str | None:
    """The hub name of the user ``user_id``."""
    return db.scalar(select(User.name).where(User.id == user_id))


def principal_names(db: Session, kind: str, keys: list[str]) -> dict[str, str]:
    """Map stored principals (user ids, team ids, group names) to display names."""
    if not keys:
        return {}
    if kind == "user":
        return dict(db.execute(select(User.id, User.name).where(User.id.in_(keys))).all())
    if kind == "team":
        return dict(db.execute(select(Team.id, Team.name).where(Team.id.in_(keys))).all())
    return {k: k for k in keys}


def teams_named(db: Session, names: Collection[str]) -> dict[str, str]:
    """Team id -> name of the teams called one of ``names``."""
    if not names:  # most people are in no team: skip the query
        return {}
    return dict(db.execute(select(Team.id, Team.name).where(Team.name.in_(names))).all())


def team_members(db: Session, team_ids: list[str]) -> dict[str, list[str]]:
    """The hub names of each team's members."""
    members: dict[str, list[str]] = defaultdict(list)
    if team_ids:
        rows = db.execute(
            select(TeamMember.team_id, User.name).join(User, User.id == TeamMember.user_id)
            .where(TeamMember.team_id.in_(team_ids))
        )
        for team_id, name in rows:
            members[team_id].append(name)
    return members


def audience(db: Session, kind: str, key: str) -> list[str] | None:
    """Hub names a grant to ``kind``/``key`` reaches; None for a hub group (everyone, to be safe)."""
    if kind == "user":
        return list(db.scalars(select(User.name).where(User.id == key)))
    if kind == "team":
        return list(db.scalars(select(User.name).join(TeamMember, TeamMember.user_id == User.id)
                               .where(TeamMember.team_id == key)))
    return None


# -- sessions, grants, cell rules ------------------------------------------------------


def session_and_owner(db: Session, session_id: str) -> tuple[RTCSession, str] | None:
    """The session ``session_id`` and its owner's hub name."""
    found = db.execute(
        select(RTCSession, User.name)
        .join(User, User.id == RTCSession.owner_id)
        .where(RTCSession.id == session_id)
    ).first()
    if found is None:
        return None
    row, owner = found
    return row, owner


def grants_naming(db: Session, session_ids: list[str], user: str, team_ids: Collection[str],
                  groups: Collection[str]) -> list[Grant]:
    """The grants in ``session_ids`` to the hub user ``user``, one of ``team_ids`` or one
    of the hub ``groups``, in one query."""
    user_id = select(User.id).where(User.name == user).scalar_subquery()
    return list(db.scalars(
        select(Grant).where(
            Grant.session_id.in_(session_ids),
            or_(
                and_(Grant.kind == "user", Grant.principal == user_id),
                and_(Grant.kind == "team", Grant.principal.in_(team_ids)),
                and_(Grant.kind == "group", Grant.principal.in_(groups)),
            ),
        )
    ))


def grant_rows(db: Session, session_ids: Collection[str]
               ) -> list[tuple[str, str, str, datetime | None]]:
    """(session id, kind, principal, expiry) of every grant in ``session_ids``."""
    rows = db.execute(
        select(Grant.session_id, Grant.kind, Grant.principal, Grant.expires_at)
        .where(Grant.session_id.in_(session_ids))
    )
    return [(sid, kind, key, expires) for sid, kind, key, expires in rows]


def cell_rule(db: Session, session_id: str, path: str, cell_id: str) -> CellRule | None:
    """The rule on one cell of one notebook, if any."""
    return db.scalar(
        select(CellRule).where(
            CellRule.session_id == session_id, CellRule.path == path, CellRule.cell_id == cell_id
        )
    )


def path_cell_rules(db: Session, session_id: str, path: str) -> list[CellRule]:
    """Every cell rule of one notebook, their writers loaded."""
    return list(db.scalars(
        select(CellRule).where(CellRule.session_id == session_id, CellRule.path == path)
        .options(selectinload(CellRule.writers))
    ))


def watcher_names(db: Session, session_id: str) -> list[str]:
    """Instructors who joined the session read-only."""
    return list(db.scalars(
        select(User.name).join(Watcher, Watcher.user_id == User.id)
        .where(Watcher.session_id == session_id).order_by(User.name)))


def watchers_of(db: Session, session_ids: Collection[str]) -> list[tuple[str, str]]:
    """(session id, hub name) of the instructors who joined ``session_ids`` read-only."""
    rows = db.execute(
        select(Watcher.session_id, User.name).join(User, User.id == Watcher.user_id)
        .where(Watcher.session_id.in_(session_ids)))
    return [(sid, name) for sid, name in rows]


def online(db: Session, session_ids: list[str]) -> dict[str, list[str]]:
    """Hub names online in each of ``session_ids`` (fresh reports only), sorted."""
    if not session_ids:
        return {}
    since = models.utcnow() - FRESH_FOR
    rows = db.execute(
        select(Presence.session_id, User.name).join(User, User.id == Presence.user_id)
        .where(Presence.session_id.in_(session_ids), Presence.seen_at >= since)
        .order_by(User.name)
    ).all()
    out: dict[str, list[str]] = defaultdict(list)
    for session_id, name in rows:
        out[session_id].append(name)
    return dict(out)


# -- hosting -----------------------------------------------------------------------------


def hosted_on(db: Session, server: ServerKey, states: Collection[str] | None = None) -> list[str]:
    """Ids of the active, unexpired sessions on ``server`` (in ``states``, if given)."""
    query = select(RTCSession.id, RTCSession.expires_at).where(
        RTCSession.server_user == server[0], RTCSession.server_name == server[1],
        RTCSession.state == "active")
    if states is not None:
        query = query.where(RTCSession.hosting_state.in_(list(states)))
    now = models.utcnow()
    return [sid for sid, expires in db.execute(query.order_by(RTCSession.created)) if live(expires, now)]


def letting_in(db: Session, server: ServerKey, opening: Collection[str] = ()
               ) -> list[tuple[str, str, str, datetime | None]]:
    """(id, host, owner's hub name, expiry) of the active sessions on ``server`` whose
    server announced the extension (hosting ``ready``), and of those in ``opening``
    (about to be marked ready)."""
    letting = RTCSession.hosting_state == "ready"
    if opening:
        letting = or_(letting, RTCSession.id.in_(list(opening)))
    rows = db.execute(
        select(RTCSession.id, RTCSession.host, User.name, RTCSession.expires_at)
        .join(User, User.id == RTCSession.owner_id)
        .where(RTCSession.server_user == server[0], RTCSession.server_name == server[1],
               RTCSession.state == "active", letting)
    )
    return [(sid, host, owner, expires) for sid, host, owner, expires in rows]


def servers_of(db: Session, session_ids: Collection[str]) -> dict[str, ServerKey]:
    """The server of each active session among ``session_ids``, in one query."""
    rows = db.execute(select(RTCSession.id, RTCSession.server_user, RTCSession.server_name)
                      .where(RTCSession.id.in_(list(session_ids)), RTCSession.state == "active"))
    return {sid: (user, name) for sid, user, name in rows}


def recorded_shares(db: Session, server: ServerKey) -> set[Pair]:
    """Whom the service recorded sharing ``server`` with."""
    rows = db.execute(
        select(HubShare.kind, HubShare.principal)
        .where(HubShare.server_user == server[0], HubShare.server_name == server[1])
    )
    return {(kind, principal) for kind, principal in rows}


def unfinished(db: Session) -> tuple[list[str], list[ServerKey]]:
    """Accounts being set up, and servers with members let in or shares recorded."""
    pending = list(db.scalars(select(RTCSession.id).where(
        RTCSession.state == "active", RTCSession.host == "account",
        RTCSession.hosting_state == "starting")))
    ready = db.execute(select(RTCSession.server_user, RTCSession.server_name)
                       .where(RTCSession.hosting_state == "ready"))
    shared = db.execute(select(HubShare.server_user, HubShare.server_name))
    return pending, sorted({(user, name) for user, name in [*ready, *shared]})


# -- the sessions a shared server hosts (its rights answer) ----------------------------------


@dataclass(frozen=True)
class Hosted:
    """An active session on the asking server, as rights needs it."""

    id: str
    root: str
    title: str
    owner: str
    host: str
    course: str | None
    expires_at: datetime | None
    #: whether the user asked about joined it read-only (only when one was named)
    joined: bool = False


def hosted_sessions(db: Session, server: ServerKey, now: datetime,
                    user_id: str | None = None) -> list[Hosted]:
    """The active sessions on ``server``; with ``user_id``, whether that user joined each
    read-only, in the same query."""
    joined = Watcher.user_id.is_not(None) if user_id is not None else false()
    query = (
        select(RTCSession.id, RTCSession.root, RTCSession.title, User.name, RTCSession.host,
               RTCSession.course, RTCSession.expires_at, joined.label("joined"))
        .join(User, User.id == RTCSession.owner_id)
        .where(RTCSession.server_user == server[0], RTCSession.server_name == server[1],
               RTCSession.state == "active")
    )
    if user_id is not None:
        query = query.outerjoin(
            Watcher, and_(Watcher.session_id == RTCSession.id, Watcher.user_id == user_id))
    rows = db.execute(query).all()
    return [Hosted(*row[:7], joined=bool(row.joined)) for row in rows if live(row.expires_at, now)]
