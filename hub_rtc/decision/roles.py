"""Roles, actions, the kinds of principal and what each role may do (the table in docs/security.md, roles)."""

from __future__ import annotations

from typing import Final, Literal, TypeVar

Role = Literal["viewer", "runner", "editor", "manager", "owner", "observer"]
Action = Literal["read", "write", "execute", "manage", "terminal"]
#: whom a grant names: a hub user, a service-kept team or a hub group
PrincipalKind = Literal["user", "team", "group"]
#: whom an ``assigned`` cell names as its writers (a hub group cannot be one)
WriterKind = Literal["user", "team"]
CellRuleKind = Literal["locked", "assigned"]
#: where a session lives: a dedicated session server, or a folder of its owner's server
HostKind = Literal["account", "owner"]
SessionState = Literal["active", "ended"]

#: Roles that can be granted to a member, weakest first.  ``owner`` is not
#: grantable: it belongs to the session itself.  ``observer`` is what an
#: instructor gets for a session in a group they watch; it is never granted.
GRANTABLE_ROLES: Final[tuple[Role, ...]] = ("viewer", "runner", "editor", "manager")
ROLES: Final[tuple[Role, ...]] = (*GRANTABLE_ROLES, "owner", "observer")
ACTIONS: Final[tuple[Action, ...]] = ("read", "write", "execute", "manage", "terminal")
PRINCIPAL_KINDS: Final[tuple[PrincipalKind, ...]] = ("user", "team", "group")
WRITER_KINDS: Final[tuple[WriterKind, ...]] = ("user", "team")
CELL_RULES: Final[tuple[CellRuleKind, ...]] = ("locked", "assigned")
HOSTS: Final[tuple[HostKind, ...]] = ("account", "owner")
SESSION_STATES: Final[tuple[SessionState, ...]] = ("active", "ended")

#: the roles that manage a session's members and cell rules, and change locked cells
MANAGING: Final[frozenset[Role]] = frozenset({"manager", "owner"})

# Rank orders roles so that "the strongest grant wins" is a max().
_RANK: Final[dict[str, int]] = {
    "observer": 0,
    "viewer": 1,
    "runner": 2,
    "editor": 3,
    "manager": 4,
    "owner": 5,
}

# What each role may do before admin policy narrows it.
_CAN: Final[dict[str, frozenset[str]]] = {
    "observer": frozenset({"read"}),
    "viewer": frozenset({"read"}),
    "runner": frozenset({"read", "execute"}),
    "editor": frozenset({"read", "write", "execute", "terminal"}),
    "manager": frozenset({"read", "write", "execute", "terminal", "manage"}),
    "owner": frozenset({"read", "write", "execute", "terminal", "manage"}),
}


def rank(role: str) -> int:
    """Strength of a role; unknown roles rank below everything."""
    return _RANK.get(role, -1)


def role_can(role: str, action: str) -> bool:
    """Whether ``role`` includes ``action`` in the unnarrowed table."""
    return action in _CAN.get(role, frozenset())


def strongest(roles: list[Role]) -> Role | None:
    """The strongest of ``roles``, or None for an empty list."""
    if not roles:
        return None
    best: Role = max(roles, key=rank)
    return best


def manages(role: str | None) -> bool:
    """Whether ``role`` manages the session (members, cell rules, locked cells)."""
    return role in MANAGING


_T = TypeVar("_T", bound=str)


def one_of(value: str, allowed: tuple[_T, ...], what: str) -> _T:
    """``value`` as one of ``allowed``: the records hold only what the API let in,
    so anything else is a broken record, refused rather than guessed at."""
    for known in allowed:
        if known == value:
            return known
    raise ValueError(f"{value!r} is not a {what} (one of {', '.join(allowed)})")


def role_of(value: str) -> Role:
    return one_of(value, ROLES, "role")


def principal_kind(value: str) -> PrincipalKind:
    return one_of(value, PRINCIPAL_KINDS, "kind of principal")


def writer_kind(value: str) -> WriterKind:
    return one_of(value, WRITER_KINDS, "kind of writer")


def cell_rule(value: str) -> CellRuleKind:
    return one_of(value, CELL_RULES, "cell rule")


def session_state(value: str) -> SessionState:
    return one_of(value, SESSION_STATES, "session state")
