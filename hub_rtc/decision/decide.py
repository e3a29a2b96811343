"""The decision: may this principal do this action on this resource?

Pure: no I/O, no clock (``now`` is passed in), no tornado.  The service's
``/authorize`` endpoint, the server extension and the tests all call
:func:`decide`, so there is exactly one place where access is defined.
"""

from __future__ import annotations

from datetime import datetime

from . import roles
from .model import (
    CellRuleView,
    Decision,
    GrantView,
    PolicyView,
    Principal,
    Resource,
    SessionView,
)
from .roles import Role


def decide(
    principal: Principal,
    action: str,
    resource: Resource,
    session: SessionView | None,
    policy: PolicyView,
    now: datetime,
) -> Decision:
    """Return whether ``principal`` may do ``action`` on ``resource``, and why."""
    if action not in roles.ACTIONS:
        return Decision(False, f"unknown action {action!r}")
    if session is None or session.id != resource.session_id:
        return Decision(False, f"no session {resource.session_id!r}")
    closed = _closed_reason(session, now)
    if closed:
        return Decision(False, closed)
    role = effective_role(principal, session, policy, now)
    if role is None:
        return Decision(False, f"{principal.name} is not a member of session {session.id}")
    return _check_action(principal, action, resource, session, policy, role)


def effective_role(
    principal: Principal, session: SessionView, policy: PolicyView, now: datetime
) -> Role | None:
    """The strongest live role ``principal`` holds in ``session``, after policy."""
    if principal.name == session.owner:
        return "owner"
    granted = [
        _narrow(g.role, policy)
        for g in session.grants
        if _grant_matches(g, principal) and not _expired(g.expires_at, now)
    ]
    role = roles.strongest([r for r in granted if r is not None])
    if role is None and session.course and session.course in principal.watches:
        return "observer"
    return role


def _closed_reason(session: SessionView, now: datetime) -> str | None:
    if session.state != "active":
        return f"session {session.id} has ended"
    if _expired(session.expires_at, now):
        return f"session {session.id} expired at {session.expires_at:%Y-%m-%d %H:%M} UTC"
    return None


def _grant_matches(grant: GrantView, principal: Principal) -> bool:
    if grant.kind == "user":
        return grant.name == principal.name
    if grant.kind == "team":
        return grant.name in principal.teams
    if grant.kind == "group":
        return grant.name in principal.groups
    return False


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def _narrow(role: str, policy: PolicyView) -> Role | None:
    """Cap a granted role at the strongest role policy still allows.

    Policy only ever narrows: if an admin stops allowing ``manager`` after it
    was granted, the grant acts as the next role down that is still allowed.
    """
    allowed = [r for r in roles.GRANTABLE_ROLES if r in policy.grantable_roles]
    below = [r for r in allowed if roles.rank(r) <= roles.rank(role)]
    return roles.strongest(below)


def _check_action(
    principal: Principal,
    action: str,
    resource: Resource,
    session: SessionView,
    policy: PolicyView,
    role: Role,
) -> Decision:
    if not roles.role_can(role, action):
        return Decision(False, f"role {role} may not {action}", role)
    narrowed = _policy_reason(action, role, policy)
    if narrowed:
        return Decision(False, narrowed, role)
    if action == "write" and resource.path and resource.cell_id:
        return _check_cell(principal, resource, session, role)
    return Decision(True, f"role {role} may {action}", role)


def _policy_reason(action: str, role: Role, policy: PolicyView) -> str | None:
    """Why admin policy refuses what the role would allow, if it does."""
    if role == "owner":
        return None
    if action == "execute" and not policy.collaborators_may_execute:
        return "policy: collaborators may not execute code"
    if action == "terminal" and not policy.collaborators_may_open_terminals:
        return "policy: collaborators may not open terminals"
    return None


def _check_cell(
    principal: Principal, resource: Resource, session: SessionView, role: Role
) -> Decision:
    assert resource.path is not None and resource.cell_id is not None
    rule = session.cell_rules.get((resource.path, resource.cell_id))
    if rule is None:
        return Decision(True, f"role {role} may write", role)
    if rule.rule == "locked":
        return _check_locked(resource, role)
    return _check_assigned(principal, resource, rule, role)


def _check_locked(resource: Resource, role: Role) -> Decision:
    if roles.manages(role):
        return Decision(True, f"cell {resource.cell_id} is locked; {role} may change it", role)
    return Decision(False, f"cell {resource.cell_id} is locked", role)


def _check_assigned(
    principal: Principal, resource: Resource, rule: CellRuleView, role: Role
) -> Decision:
    # "assigned" means only the listed writers, owner and managers included:
    # they can lift the rule, but while it stands the cell is the writers'.
    mine = ("user", principal.name) in rule.writers or any(
        ("team", t) in rule.writers for t in principal.teams
    )
    if mine:
        return Decision(True, f"cell {resource.cell_id} is assigned to {principal.name}", role)
    return Decision(False, f"cell {resource.cell_id} is assigned to others", role)
