"""What one user may do on one server: the answer a shared server caches.

Everything comes from the pure :func:`~hub_rtc.decision.decide`, asked once
per action; this module only finds the session (the one on this server
whose folder holds the path, or the user's strongest) and loads its records
in one transaction with a handful of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...decision import ACTIONS, PolicyView, Principal, Resource, SessionView, decide, effective_role
from ...decision.roles import rank
from ...records import RTCSession, User, Watcher
from ..hosting.shares import live
from ..ports import ServerKey
from ..views import grants_by_session, path_rules
from .people import identity_of


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


def hosted_sessions(db: Session, server: ServerKey, now: datetime) -> list[Hosted]:
    rows = db.execute(
        select(RTCSession.id, RTCSession.root, RTCSession.title, User.name, RTCSession.host,
               RTCSession.course, RTCSession.expires_at)
        .join(User, User.id == RTCSession.owner_id)
        .where(RTCSession.server_user == server[0], RTCSession.server_name == server[1],
               RTCSession.state == "active")
    ).all()
    return [Hosted(*row) for row in rows if live(row.expires_at, now)]


def covering(sessions: list[Hosted], path: str) -> Hosted | None:
    """The session whose folder holds ``path``; the deepest folder wins."""
    holding = [s for s in sessions if not s.root or path == s.root or path.startswith(s.root + "/")]
    return max(holding, key=lambda s: len(s.root), default=None)


def relative(path: str, root: str) -> str:
    """``path`` inside a session folder, as cell rules name notebooks."""
    return path[len(root) + 1:] if root and path != root else ("" if root else path)


def _view(s: Hosted, grants: dict[str, list[Any]], rules: dict[tuple[str, str], Any]) -> SessionView:
    return SessionView(id=s.id, owner=s.owner, expires_at=s.expires_at, course=s.course,
                       grants=tuple(grants.get(s.id, ())), cell_rules=rules)


def strongest(sessions: list[Hosted], principal: Principal, grants: dict[str, list[Any]],
              policy: PolicyView, now: datetime) -> Hosted | None:
    """The session where ``principal``'s role is strongest (None: a member of none)."""
    roles = [(effective_role(principal, _view(s, grants, {}), policy, now), s) for s in sessions]
    held = [(role, s) for role, s in roles if role is not None]
    return max(held, key=lambda pair: rank(pair[0]), default=(None, None))[1]


@dataclass(frozen=True)
class Question:
    server: ServerKey
    path: str | None  # cleaned, relative to the server; None: anywhere on it
    policy: PolicyView
    now: datetime


def answer(db: Session, user: User, principal: Principal, q: Question) -> dict[str, Any]:
    """The rights of ``principal`` at ``q.path`` on ``q.server``."""
    sessions = hosted_sessions(db, q.server, q.now)
    if q.path is not None:
        found = covering(sessions, q.path)
        grants = grants_by_session(db, [found.id], principal) if found else {}
    else:
        grants = grants_by_session(db, [s.id for s in sessions], principal)
        found = strongest(sessions, principal, grants, q.policy, q.now)
    out: dict[str, Any] = {
        "user": identity_of(user), "session": None, "role": None, **dict.fromkeys(ACTIONS, False),
        "protected_cells": [], "reason": _nothing(principal.name, q.path),
    }
    if found is not None:
        out.update(_decide(db, found, principal, grants, q))
        if out["role"] == "observer" and db.get(Watcher, (found.id, user.id)) is None:
            # watching a course shows its activity; opening a session's documents
            # takes joining it read-only, which members see (and leaving ends at once)
            out.update(dict.fromkeys(ACTIONS, False), reason=(
                f"{principal.name} watches session {found.id}'s course but has not joined it;"
                " join it read-only from the dashboard"))
    if principal.name == q.server[0]:
        out.update(dict.fromkeys(ACTIONS, True), role=out["role"] or "owner",
                   reason=f"{principal.name} owns this server")
    return out


def _nothing(name: str, path: str | None) -> str:
    if path is None:
        return f"{name} is not a member of any session on this server"
    return f"no session on this server holds {path!r}"


def _decide(db: Session, s: Hosted, principal: Principal, grants: dict[str, list[Any]],
            q: Question) -> dict[str, Any]:
    rel = relative(q.path, s.root) if q.path is not None else None
    rules = path_rules(db, s.id, rel) if rel else {}
    view = _view(s, grants, rules)
    asked = {a: decide(principal, a, Resource(s.id, rel), view, q.policy, q.now) for a in ACTIONS}
    out: dict[str, Any] = {a: d.allowed for a, d in asked.items()}
    out["role"] = asked["read"].role
    out["reason"] = asked["read"].reason if not out["read"] else f"role {out['role']} in session {s.id}"
    if s.host == "owner" and out["terminal"] and principal.name != q.server[0]:
        # a terminal on the owner's server runs as the owner, outside the session folder
        out["terminal"] = False
    out["protected_cells"] = sorted(
        cell for (_, cell) in rules
        if not decide(principal, "write", Resource(s.id, rel, cell), view, q.policy, q.now).allowed
    )
    out["session"] = {"id": s.id, "root": s.root, "title": s.title}
    return out
