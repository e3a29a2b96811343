"""Records turned into what the decision reads and what the API returns.

The queries themselves live with the records (:mod:`hub_rtc.records.queries`); this
module shapes what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from ..decision import CellRuleView, GrantView, Principal, SessionView
from ..decision.kernels import kernel_isolation
from ..decision.roles import session_state
from ..records import CellRule, Grant, RTCSession, Server, queries
from ..records.queries import online, principal_names, watcher_names

__all__ = [
    "Serving", "grants_by_session", "iso", "load_view", "members_json", "open_url", "path_rules",
    "people_of", "session_json", "writer_names",
]


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class Serving:
    """Where a session's documents are served and whether they can be now, as loaded:
    what a document's place reads of the session's row (plain data, kept between
    requests where a row could not be)."""

    id: str
    server_user: str
    server_name: str
    root: str
    state: str
    hosting_state: str
    hosting_message: str

    @classmethod
    def of(cls, row: RTCSession) -> Serving:
        return cls(row.id, row.server_user, row.server_name, row.root, row.state,
                   row.hosting_state, row.hosting_message)


def load_view(
    db: Session,
    session_id: str,
    principal: Principal,
    path: str | None = None,
    cell_id: str | None = None,
) -> SessionView | None:
    """The decision's view of one session, holding only what concerns ``principal``.

    Filtering grants and rules in SQL keeps a decision at a few indexed
    lookups however large the session is.
    """
    found = queries.session_and_owner(db, session_id)
    if found is None:
        return None
    row, owner = found
    rules = {}
    if path is not None and cell_id is not None:
        rules = _rule_views(db, session_id, path, cell_id)
    return SessionView(
        id=row.id,
        owner=owner or "",
        state=session_state(row.state),
        expires_at=row.expires_at,
        course=row.course,
        grants=_grants_for(db, session_id, principal),
        cell_rules=rules,
    )


def _grants_for(db: Session, session_id: str, principal: Principal) -> tuple[GrantView, ...]:
    return tuple(grants_by_session(db, [session_id], principal).get(session_id, ()))


def grants_by_session(
    db: Session, session_ids: list[str], principal: Principal
) -> dict[str, list[GrantView]]:
    """The grants naming ``principal`` in each of ``session_ids``, in one query (two with teams)."""
    teams = queries.teams_named(db, principal.teams)
    rows = queries.grants_naming(db, session_ids, principal.name, teams, principal.groups)
    out: dict[str, list[GrantView]] = {}
    for g in rows:
        view = GrantView.from_record(g.kind, _grant_name(g, principal, teams), g.role, g.expires_at)
        out.setdefault(g.session_id, []).append(view)
    return out


def _grant_name(grant: Grant, principal: Principal, teams: dict[str, str]) -> str:
    """A matched grant's principal in the decision's terms (names, not ids)."""
    if grant.kind == "user":
        return principal.name
    if grant.kind == "team":
        return teams[grant.principal]
    return grant.principal


def _rule_views(
    db: Session, session_id: str, path: str, cell_id: str
) -> dict[tuple[str, str], CellRuleView]:
    rule = queries.cell_rule(db, session_id, path, cell_id)
    if rule is None:
        return {}
    writers = [(w["kind"], w["name"]) for w in writer_names(db, rule)]
    return {(path, cell_id): CellRuleView.from_record(rule.rule, writers)}


def path_rules(db: Session, session_id: str, path: str) -> dict[tuple[str, str], CellRuleView]:
    """Every cell rule of one notebook, writers named, in at most four queries."""
    rules = queries.path_cell_rules(db, session_id, path)
    writers = [w for r in rules for w in r.writers]
    names = {kind: principal_names(db, kind, [w.principal for w in writers if w.kind == kind])
             for kind in ("user", "team")}
    return {
        (path, r.cell_id): CellRuleView.from_record(r.rule, [
            (w.kind, names[w.kind].get(w.principal, w.principal)) for w in r.writers])
        for r in rules
    }


def writer_names(db: Session, rule: CellRule) -> list[dict[str, str]]:
    out = []
    for kind in ("user", "team"):
        keys = [w.principal for w in rule.writers if w.kind == kind]
        names = principal_names(db, kind, keys)
        out += [{"kind": kind, "name": names.get(k, k)} for k in keys]
    return out


def members_json(db: Session, row: RTCSession) -> list[dict[str, Any]]:
    granted_by = principal_names(db, "user", [g.granted_by_id for g in row.grants if g.granted_by_id])
    # a team's grant reaches each of its members: the pages list and count them
    teams = queries.team_members(db, [g.principal for g in row.grants if g.kind == "team"])
    out = []
    for kind in ("user", "team", "group"):
        grants = [g for g in row.grants if g.kind == kind]
        names = principal_names(db, kind, [g.principal for g in grants])
        out += [
            {
                "kind": kind,
                "name": names.get(g.principal, g.principal),
                "role": g.role,
                "expires_at": iso(g.expires_at),
                "granted_by": granted_by.get(g.granted_by_id or ""),
                **({"people": sorted(teams.get(g.principal, []))} if kind == "team" else {}),
            }
            for g in grants
        ]
    return out


def people_of(owner: str | None, members: list[dict[str, Any]]) -> list[str]:
    """The people a session's members name, once each: its users and every member of
    its teams, not the owner.  A hub group's members are the hub's to know (it may be
    a whole course), so a group adds nobody here; the pages show groups beside."""
    named = {m["name"] for m in members if m["kind"] == "user"}
    named.update(person for m in members if m["kind"] == "team" for person in m["people"])
    named.discard(owner or "")
    return sorted(named)


def open_url(row: RTCSession, hub_base_url: str) -> str:
    """Where JupyterLab opens this session: the server, on the session folder."""
    base = hub_base_url.rstrip("/")
    server = quote(row.server_user, safe="")
    if row.server_name:
        server += "/" + quote(row.server_name, safe="")
    tree = "/" + quote(row.root) if row.root else ""
    return f"{base}/user/{server}/lab/tree{tree}"


def server_kernels(server: Server | None, kernel_policy: str) -> dict[str, str]:
    """How session kernels run on ``server``: the policy against what it said it can do."""
    if server is None or server.kernel_sandbox is None:
        return {"mode": "unknown", "why": "the server has not said yet whether it can run "
                                          "kernels in a sandbox"}
    decided = kernel_isolation(
        kernel_policy, None if server.kernel_sandbox else server.kernel_sandbox_missing,
        None if server.kernel_account else (server.kernel_account_missing or "not said"))
    return {"mode": decided.mode, "why": decided.why}


def kernels_json(db: Session, row: RTCSession, kernel_policy: str) -> dict[str, str]:
    """How the session's kernels run (see :func:`server_kernels`)."""
    return server_kernels(Server.find(db, row.server_user, row.server_name), kernel_policy)


def session_json(
    db: Session, row: RTCSession, my_role: str | None, hub_base_url: str,
    online_now: dict[str, list[str]] | None = None, kernel_policy: str = "auto",
) -> dict[str, Any]:
    """One session in the API's form; a list passes ``online_now`` for all its rows at once."""
    if online_now is None:
        online_now = online(db, [row.id])
    owner = queries.user_name(db, row.owner_id)
    members = members_json(db, row)
    return {
        "id": row.id,
        "title": row.title,
        "owner": owner,
        "host": row.host,
        "server": {"user": row.server_user, "name": row.server_name},
        "root": row.root,
        "course": row.course,
        "state": row.state,
        "created": iso(row.created),
        "expires_at": iso(row.expires_at),
        "last_activity": iso(row.last_activity),
        "ended_at": iso(row.ended_at),
        "url": open_url(row, hub_base_url),
        "hosting": {"state": row.hosting_state, "message": row.hosting_message},
        "kernels": kernels_json(db, row, kernel_policy),
        "my_role": my_role,
        "members": members,
        "people": people_of(owner, members),
        "online": online_now.get(row.id, []),
        "watchers": watcher_names(db, row.id),
    }
