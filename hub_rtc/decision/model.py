"""The plain values the decision reads.  Built by the records layer, never by
clients, so nothing here is client-asserted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .roles import (
    GRANTABLE_ROLES,
    HOSTS,
    CellRuleKind,
    HostKind,
    PrincipalKind,
    Role,
    SessionState,
    WriterKind,
    cell_rule,
    principal_kind,
    role_of,
    writer_kind,
)


@dataclass(frozen=True)
class Principal:
    """Who is asking: the hub user, with hub groups and service-kept teams."""

    name: str
    groups: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    #: hub groups whose sessions this user may watch (from policy)
    watches: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Resource:
    """What is asked about: a session, optionally a notebook and a cell in it."""

    session_id: str
    path: str | None = None
    cell_id: str | None = None


@dataclass(frozen=True)
class GrantView:
    kind: PrincipalKind
    name: str
    role: Role
    expires_at: datetime | None = None

    @classmethod
    def from_record(cls, kind: str, name: str, role: str, expires_at: datetime | None
                    ) -> GrantView:
        """A grant as the records hold it (plain strings), in the decision's terms."""
        return cls(principal_kind(kind), name, role_of(role), expires_at)


@dataclass(frozen=True)
class CellRuleView:
    rule: CellRuleKind
    #: (kind, name) pairs; only for "assigned"
    writers: frozenset[tuple[WriterKind, str]] = frozenset()

    @classmethod
    def from_record(cls, rule: str, writers: Iterable[tuple[str, str]] = ()) -> CellRuleView:
        """A cell rule as the records hold it (plain strings), in the decision's terms."""
        return cls(cell_rule(rule), frozenset((writer_kind(k), name) for k, name in writers))


@dataclass(frozen=True)
class SessionView:
    id: str
    owner: str
    state: SessionState = "active"
    expires_at: datetime | None = None
    course: str | None = None
    grants: tuple[GrantView, ...] = ()
    #: keyed by (notebook path relative to the session root, cell id)
    cell_rules: dict[tuple[str, str], CellRuleView] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyView:
    """Admin policy as the decision reads it (``RTCPolicy.decision_view``).

    The first three narrow what a session grants; the rest say who may create
    sessions, where, for how long, and how many members they may hold.
    """

    collaborators_may_execute: bool = True
    collaborators_may_open_terminals: bool = False
    #: in the order the admin listed them
    grantable_roles: tuple[str, ...] = GRANTABLE_ROLES
    allow_all_to_create: bool = True
    creator_users: frozenset[str] = frozenset()
    creator_groups: frozenset[str] = frozenset()
    max_members_per_session: int = 30
    max_sessions_per_user: int = 10
    allowed_hosts: frozenset[str] = frozenset(HOSTS)
    default_host: HostKind = "account"
    #: None: sessions created without ``expires_at`` do not expire
    default_lifetime: timedelta | None = timedelta(days=14)
    #: None: no limit
    max_lifetime: timedelta | None = timedelta(days=180)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    role: Role | None = None
