"""New session, the session page, and the changes made from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tornado import web

from ...adapters.probe import notebook_probe
from ...decision import PRINCIPAL_KINDS as KINDS
from ...decision import Principal, Standing, may_manage, sees_activity_summary
from ...decision.grants import grantable_roles
from ...manager import RTCError
from ...manager.documents.place import on_server
from ...manager.ports import Found, NotebookProbe, ServerKey
from .base import FormError, PageHandler, field_errors
from .notebooks import Notebook, session_notebooks

SESSION = r"/sessions/(?P<session_id>[0-9a-zA-Z]+)"
NEW_FIELDS = ("title", "host", "root", "course", "members", "expires_at")
#: blank member rows the forms offer (no script needed to add more)
MEMBER_ROWS = 5
#: refusals about whom a session names, shown beside the members
MEMBER_HINTS = ("no hub user", "no team", "no hub group", "role", "member", "listed twice", "owns the")
#: notebooks outside the page's list the page reads to tell whether their rules apply
MAX_CHECKED = 10


def expiry(raw: str) -> str | None:
    """A ``datetime-local`` field (read as UTC) as ISO 8601; blank: none."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError:
        raise FormError({"expires_at": f"{raw!r} is not a date and time"}) from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).isoformat()


def member_errors(error: RTCError, fields: tuple[str, ...]) -> dict[str, str]:
    errors = field_errors(error, fields)
    if "" in errors and any(h in error.message for h in MEMBER_HINTS):
        return {"members": error.message}
    return errors


class NewSessionPage(PageHandler):
    section = "new"

    @web.authenticated
    async def get(self) -> None:
        await self._show({"host": self.manager.ctx.policy.default_host, "members": []}, {})

    @web.authenticated
    async def post(self) -> None:
        actor = await self.viewer()
        values = self._values()
        try:
            body = self.form("SessionCreate", self._body(values), NEW_FIELDS)
            session = await self.manager.sessions.create(actor, body)
        except FormError as e:
            return await self._show(values, e.errors, e.status)
        except RTCError as e:
            return await self._show(values, member_errors(e, NEW_FIELDS), e.status)
        self.done("sessions", session["id"], notice="created")

    def _values(self) -> dict[str, Any]:
        """What was typed, kept to refill the form when something is refused."""
        arg = self.get_body_argument
        rows = [{"kind": arg(f"kind{i}", "user"), "name": arg(f"name{i}", "").strip(),
                 "role": arg(f"role{i}", "editor")} for i in range(MEMBER_ROWS)]
        return {"title": arg("title", ""), "host": arg("host", ""), "root": arg("root", "").strip(),
                "course": arg("course", ""), "expires_at": arg("expires_at", ""),
                "members": [r for r in rows if r["name"]]}

    def _body(self, values: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"title": values["title"]}
        for key in ("host", "root", "course"):
            if values[key]:
                body[key] = values[key]
        for row in values["members"]:
            if row["kind"] not in KINDS:
                raise FormError({"members": f"{row['kind']!r} is not user, team or group"})
        body["members"] = [{r["kind"]: r["name"], "role": r["role"]} for r in values["members"]]
        body["expires_at"] = expiry(values["expires_at"])
        return body

    async def _show(self, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> None:
        actor = await self.viewer()
        policy = self.manager.ctx.policy
        rows = values["members"] + [{"kind": "user", "name": "", "role": "editor"}] * MEMBER_ROWS
        await self.render_page(
            "new_session.html", status=status, values=values, errors=errors,
            rows=rows[:MEMBER_ROWS], kinds=KINDS, policy=policy,
            roles=grantable_roles(actor.is_admin, policy.decision_view()),
            courses=sorted(actor.groups & policy.courses()),
            teams=[t["name"] for t in await self.manager.teams.list(actor)],
        )


class SessionPage(PageHandler):
    section = "sessions"

    @web.authenticated
    async def get(self, session_id: str) -> None:
        await self.show(session_id, {})

    async def show(self, session_id: str, errors: dict[str, str], status: int = 200,
                   values: dict[str, Any] | None = None) -> None:
        actor = await self.viewer()
        session = await self.manager.sessions.get(actor, session_id)
        manage = may_manage(session["my_role"], actor.is_admin)
        notebooks, reading = await self._notebooks(session, actor.name, manage)
        all_rules = await self.manager.cells.rules(actor, session_id)
        rules = {(r["path"], r["cell_id"]): r for r in all_rules}
        unapplied = await self._unapplied(session, all_rules, notebooks) if manage else []
        summary = []
        if sees_activity_summary(session["my_role"], actor.is_admin):
            summary = await self.manager.activity.summary(actor, session_id)
        policy = self.manager.ctx.policy
        await self.render_page(
            "session.html", status=status, s=session, manage=manage,
            standing=Standing(Principal(actor.name), session["my_role"], actor.is_admin),
            active=session["state"] == "active", notebooks=notebooks, reading=reading,
            rules=rules, unapplied=unapplied, summary=summary, errors=errors,
            values=values or {}, kinds=KINDS,
            pending=self.manager.hosting.unconfirmed.of(session_id).pending,
            roles=grantable_roles(actor.is_admin, policy.decision_view()),
            writers=[m for m in session["members"] if m["kind"] in ("user", "team")],
        )

    async def _unapplied(self, session: dict[str, Any], rules: list[dict[str, Any]],
                         notebooks: list[Notebook]) -> list[dict[str, Any]]:
        """The rules that protect no cell now, each with why: from the notebooks listed,
        else read from the server (a few notebooks at most)."""
        listed = {on_server(session["root"], nb.path): frozenset(c.id for c in nb.cells)
                  for nb in notebooks if not nb.error}
        probe = _remembering(notebook_probe(self.settings["upstream"]), listed)
        out = []
        for rule in rules:
            applied, why = await self.manager.cells.check(session["id"], rule["path"],
                                                          rule["cell_id"], probe)
            if not applied:
                out.append({**rule, "applied": applied, "why": why})
        return out

    async def _notebooks(self, session: dict[str, Any], name: str,
                         manage: bool) -> tuple[list[Notebook], str]:
        """The notebooks to pick cells from (for managers only)."""
        if not manage:
            return [], ""
        return await session_notebooks(self.settings["upstream"], session, name)


class SessionAction(SessionPage):
    """A form posted from the session page: do it, then back to the page (or its errors)."""

    fields: tuple[str, ...] = ()

    @web.authenticated
    async def get(self, session_id: str) -> None:
        self.redirect(self.url("sessions", session_id))  # forms post here; people land there

    @web.authenticated
    async def post(self, session_id: str) -> None:
        actor = await self.viewer()
        try:
            notice = await self.act(actor, session_id)
        except FormError as e:
            return await self.show(session_id, e.errors, e.status, self._typed())
        except RTCError as e:
            return await self.show(session_id, member_errors(e, self.fields), e.status,
                                   self._typed())
        self.done("sessions", session_id, notice=notice)

    def _typed(self) -> dict[str, str]:
        return {k: self.get_body_argument(k, "") for k in ("kind", "name", "role", "expires_at")}

    async def act(self, actor: Any, session_id: str) -> str:
        raise NotImplementedError


class MemberAction(SessionAction):
    """Add a member or change one's role."""

    fields = ("name", "role", "expires_at")

    async def act(self, actor: Any, session_id: str) -> str:
        arg = self.get_body_argument
        kind, name = arg("kind", "user"), arg("name", "").strip()
        if kind not in KINDS:
            raise FormError({"name": f"{kind!r} is not user, team or group"})
        if not name:
            raise FormError({"name": "name a user, team or hub group"})
        body = self.form("MemberPut", {"role": arg("role", ""),
                                       "expires_at": expiry(arg("expires_at", ""))}, self.fields)
        await self.manager.members.put(actor, session_id, kind, name, body)
        return "member"


class RemoveMemberAction(SessionAction):
    async def act(self, actor: Any, session_id: str) -> str:
        arg = self.get_body_argument
        await self.manager.members.delete(actor, session_id, arg("kind", ""), arg("name", ""))
        return "removed"


class CellAction(SessionAction):
    """Lock, assign or free one cell picked from the notebook's list."""

    fields = ("writers",)

    async def act(self, actor: Any, session_id: str) -> str:
        arg = self.get_body_argument
        path, cell_id, rule = arg("path", ""), arg("cell_id", ""), arg("rule", "")
        if rule == "free":
            await self.manager.cells.delete(actor, session_id, path, cell_id)
            return "cells"
        writers = []
        for entry in self.get_body_arguments("writers"):
            kind, _, name = entry.partition(":")
            writers.append({kind: name})
        body: dict[str, Any] = {"path": path, "cell_id": cell_id, "rule": rule}
        if rule == "assigned":
            body["writers"] = writers
        await self.manager.cells.put(actor, session_id, self.form("CellRulePut", body, self.fields),
                                     notebook_probe(self.settings["upstream"]))
        return "cells"


class EndAction(SessionAction):
    async def act(self, actor: Any, session_id: str) -> str:
        if self.get_body_argument("confirm", "") != "yes":
            raise FormError({"confirm": "tick the box to confirm that the session ends"})
        await self.manager.sessions.end(actor, session_id)
        return "ended"


class WatchAction(SessionAction):
    async def act(self, actor: Any, session_id: str) -> str:
        if self.get_body_argument("leave", ""):
            await self.manager.watching.leave(actor, session_id)
            return "left"
        await self.manager.watching.join(actor, session_id)
        return "joined"


def _remembering(probe: NotebookProbe, listed: dict[str, frozenset[str]]) -> NotebookProbe:
    """``probe``, answering from the page's own list first (by path on the server) and
    reading each other notebook once, at most :data:`MAX_CHECKED` of them."""
    seen: dict[str, Found] = {}

    async def remembered(server: ServerKey, path: str, as_user: str) -> Found:
        if path not in seen:
            if len(seen) >= MAX_CHECKED:
                return Found("unknown", why="too many notebooks to check on one page")
            seen[path] = await probe(server, path, as_user)
        return seen[path]

    async def answer(server: ServerKey, path: str, as_user: str) -> Found:
        if path in listed:
            return Found("notebook", listed[path])
        return await remembered(server, path, as_user)

    return answer


default_handlers = [
    (r"/sessions/new", NewSessionPage),
    (SESSION, SessionPage),
    (SESSION + r"/members", MemberAction),
    (SESSION + r"/members/remove", RemoveMemberAction),
    (SESSION + r"/cells", CellAction),
    (SESSION + r"/end", EndAction),
    (SESSION + r"/watch", WatchAction),
]
