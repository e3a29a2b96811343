"""What one user may do on one server: the answer a shared server caches.

Every rule is the decision's (:func:`~hub_rtc.decision.server_rights`); this
module only finds the session (the one on this server whose folder holds
the path, or the user's strongest) and loads its records in one transaction
with a handful of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ...decision import (
    ACTIONS,
    GrantView,
    HostKind,
    Placed,
    PolicyView,
    Principal,
    ServerRights,
    SessionView,
    server_rights,
    strongest_session,
)
from ...decision.roles import HOSTS, one_of
from ...records import User
from ...records.queries import Hosted, hosted_sessions
from ..ports import ServerKey
from ..views import grants_by_session, path_rules
from .people import identity_of


def covering(sessions: list[Hosted], path: str) -> Hosted | None:
    """The session whose folder holds ``path``; the deepest folder wins."""
    holding = [s for s in sessions if not s.root or path == s.root or path.startswith(s.root + "/")]
    return max(holding, key=lambda s: len(s.root), default=None)


def relative(path: str, root: str) -> str:
    """``path`` inside a session folder, as cell rules name notebooks."""
    return path[len(root) + 1:] if root and path != root else ("" if root else path)


def _view(s: Hosted, grants: dict[str, list[GrantView]], rules: dict[tuple[str, str], Any]
          ) -> SessionView:
    return SessionView(id=s.id, owner=s.owner, expires_at=s.expires_at, course=s.course,
                       grants=tuple(grants.get(s.id, ())), cell_rules=rules)


def strongest(sessions: list[Hosted], principal: Principal, grants: dict[str, list[GrantView]],
              policy: PolicyView, now: datetime) -> Hosted | None:
    """The session where ``principal``'s role is strongest (None: a member of none)."""
    found = strongest_session(principal, [_view(s, grants, {}) for s in sessions], policy, now)
    return next((s for s in sessions if found is not None and s.id == found.id), None)


@dataclass(frozen=True)
class Question:
    server: ServerKey
    path: str | None  # cleaned, relative to the server; None: anywhere on it
    policy: PolicyView
    now: datetime


def answer(db: Session, user: User, principal: Principal, q: Question) -> dict[str, Any]:
    """The rights of ``principal`` at ``q.path`` on ``q.server``."""
    sessions = hosted_sessions(db, q.server, q.now, user.id)
    if q.path is not None:
        found = covering(sessions, q.path)
        grants = grants_by_session(db, [found.id], principal) if found else {}
    else:
        grants = grants_by_session(db, [s.id for s in sessions], principal)
        found = strongest(sessions, principal, grants, q.policy, q.now)
    placed = _placed(db, found, grants, q) if found is not None else None
    rights = server_rights(principal, q.server[0], q.path, placed, q.policy, q.now)
    session = {"id": found.id, "root": found.root, "title": found.title} if found else None
    return _json(identity_of(user), session, rights)


def _placed(db: Session, s: Hosted, grants: dict[str, list[GrantView]], q: Question) -> Placed:
    rel = relative(q.path, s.root) if q.path is not None else None
    rules = path_rules(db, s.id, rel) if rel else {}
    host: HostKind = one_of(s.host, HOSTS, "host")
    return Placed(_view(s, grants, rules), host, rel, s.joined)


def _json(user: dict[str, Any], session: dict[str, Any] | None, r: ServerRights) -> dict[str, Any]:
    """The answer in the API's form (``ServerRights`` in docs/openapi.yaml)."""
    return {"user": user, "session": session, "role": r.role,
            **{a: r.allowed[a] for a in ACTIONS}, "protected_cells": list(r.protected_cells),
            "reason": r.reason}
