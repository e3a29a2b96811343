"""The plain values the decision reads.  Built by the records layer, never by
clients, so nothing here is client-asserted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
    kind: str  # "user" | "team" | "group"
    name: str
    role: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CellRuleView:
    rule: str  # "locked" | "assigned"
    #: (kind, name) pairs with kind "user" or "team"; only for "assigned"
    writers: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class SessionView:
    id: str
    owner: str
    state: str = "active"  # "active" | "ended"
    expires_at: datetime | None = None
    course: str | None = None
    grants: tuple[GrantView, ...] = ()
    #: keyed by (notebook path relative to the session root, cell id)
    cell_rules: dict[tuple[str, str], CellRuleView] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyView:
    """The part of admin policy that narrows decisions."""

    collaborators_may_execute: bool = True
    collaborators_may_open_terminals: bool = False
    grantable_roles: frozenset[str] = frozenset({"viewer", "runner", "editor", "manager"})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    role: str | None = None
