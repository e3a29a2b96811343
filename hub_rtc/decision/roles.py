"""Roles, actions and what each role may do (the table in DESIGN.md)."""

from __future__ import annotations

from typing import Final, Literal

Role = Literal["viewer", "runner", "editor", "manager", "owner", "observer"]
Action = Literal["read", "write", "execute", "manage", "terminal"]

#: Roles that can be granted to a member, weakest first.  ``owner`` is not
#: grantable: it belongs to the session itself.  ``observer`` is what an
#: instructor gets for a session in a group they watch; it is never granted.
GRANTABLE_ROLES: Final[tuple[str, ...]] = ("viewer", "runner", "editor", "manager")
ACTIONS: Final[tuple[str, ...]] = ("read", "write", "execute", "manage", "terminal")

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


def strongest(roles: list[str]) -> str | None:
    """The strongest of ``roles``, or None for an empty list."""
    return max(roles, key=rank) if roles else None
