"""Who may be named in a session, with which role, and how many.

A grant names a hub user, a team or a hub group (:data:`~.roles.PRINCIPAL_KINDS`);
an ``assigned`` cell names users and teams only (:data:`~.roles.WRITER_KINDS`).
Each rule answers with the reason to refuse (``None``: allowed).
"""

from __future__ import annotations

from .model import PolicyView
from .roles import GRANTABLE_ROLES, Role


def grantable_roles(admin: bool, policy: PolicyView) -> list[Role]:
    """The roles a session's owner and managers may grant, weakest first; an rtc
    admin may grant any of them, whatever policy says."""
    return [r for r in GRANTABLE_ROLES if r in policy.grantable_roles or admin]


def role_refusal(role: str, admin: bool, policy: PolicyView) -> str | None:
    if admin or role in policy.grantable_roles:
        return None
    allowed = ", ".join(policy.grantable_roles) or "none"
    return f"policy: role {role!r} may not be granted (allowed: {allowed})"


def members_refusal(count: int, policy: PolicyView) -> str | None:
    """Why a session may not hold ``count`` grants (a team or group counts as one)."""
    limit = policy.max_members_per_session
    if count <= limit:
        return None
    return f"policy: a session may have at most {limit} members"


def owner_grant_refusal(kind: str, name: str, owner: str) -> str | None:
    """The session's owner holds every right already: a grant to them would mean less."""
    if kind == "user" and name == owner:
        return f"{name} owns the session and already has every right"
    return None


def writers_refusal(rule: str, writers: int) -> str | None:
    """Why a cell rule may not name ``writers`` writers."""
    if rule == "locked" and writers:
        return "writers: a locked cell has no writers; use rule 'assigned'"
    if rule == "assigned" and not writers:
        return "writers: an assigned cell needs at least one user or team"
    return None
