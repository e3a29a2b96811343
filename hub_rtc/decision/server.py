"""What one user may do on one shared server: the answer a server caches.

Each action is :func:`~hub_rtc.decision.decide`'s, asked about the session
the path falls in; then three rules only a server has:

- an instructor watching the course (role ``observer``) who has not joined
  the session read-only gets nothing on its server: joining is what members
  see, and leaving ends it at once;
- on a folder of the owner's own server, a collaborator's terminal stays
  closed: it would run as the owner, outside the session folder;
- the server's owner may do everything (:mod:`.owner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from .decide import decide, effective_role
from .model import PolicyView, Principal, Resource, SessionView
from .owner import owner_reason, owns_server
from .roles import ACTIONS, Action, HostKind, Role, rank


@dataclass(frozen=True)
class Placed:
    """The session a server's question falls in, as the records hold it."""

    session: SessionView
    host: HostKind
    #: the path asked about, relative to the session folder; None: anywhere in it
    path: str | None = None
    #: whether the principal joined the session read-only (an instructor watching its course)
    joined: bool = False


@dataclass(frozen=True)
class ServerRights:
    """One user's rights on one server (the ``/servers/rights`` answer, less who they are)."""

    role: Role | None
    reason: str
    allowed: dict[Action, bool] = field(default_factory=lambda: dict.fromkeys(ACTIONS, False))
    #: cells of the notebook asked about that this user may not change
    protected_cells: tuple[str, ...] = ()


def server_rights(principal: Principal, server_user: str, path: str | None,
                  placed: Placed | None, policy: PolicyView, now: datetime) -> ServerRights:
    """The rights of ``principal`` at ``path`` (from the server's root; None: anywhere)
    on ``server_user``'s server, where ``placed`` is the session it falls in, if any."""
    if placed is None:
        rights = ServerRights(None, _nothing(principal.name, path))
    else:
        rights = _in_session(principal, server_user, placed, policy, now)
    if owns_server(principal.name, server_user):
        return replace(rights, allowed=dict.fromkeys(ACTIONS, True), role=rights.role or "owner",
                       reason=owner_reason(principal.name))
    return rights


def strongest_session(principal: Principal, sessions: list[SessionView], policy: PolicyView,
                      now: datetime) -> SessionView | None:
    """The session where ``principal``'s role is strongest (None: a member of none);
    the first of equals."""
    held = [(role, s) for s in sessions
            if (role := effective_role(principal, s, policy, now)) is not None]
    return max(held, key=lambda pair: rank(pair[0]), default=(None, None))[1]


def _nothing(name: str, path: str | None) -> str:
    if path is None:
        return f"{name} is not a member of any session on this server"
    return f"no session on this server holds {path!r}"


def _in_session(principal: Principal, server_user: str, placed: Placed, policy: PolicyView,
                now: datetime) -> ServerRights:
    view = placed.session
    asked = {a: decide(principal, a, Resource(view.id, placed.path), view, policy, now)
             for a in ACTIONS}
    allowed = {a: d.allowed for a, d in asked.items()}
    role = asked["read"].role
    reason = asked["read"].reason if not allowed["read"] else f"role {role} in session {view.id}"
    if placed.host == "owner" and allowed["terminal"] and not owns_server(principal.name, server_user):
        # a terminal on the owner's server runs as the owner, outside the session folder
        allowed["terminal"] = False
    protected = tuple(sorted(
        cell for (_, cell) in view.cell_rules
        if not decide(principal, "write", Resource(view.id, placed.path, cell), view, policy,
                      now).allowed))
    if role == "observer" and not placed.joined:
        allowed = dict.fromkeys(ACTIONS, False)
        reason = (f"{principal.name} watches session {view.id}'s course but has not joined it;"
                  " join it read-only from the dashboard")
    return ServerRights(role, reason, allowed, protected)
