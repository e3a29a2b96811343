"""The server-facing side: announce, rights, the events hello, the list of servers.

A shared server speaks with its own hub token (``custom:rtc:authorize``
through the hub's ``server`` role); the hub says which server that token
belongs to.  A holder of ``custom:rtc:admin`` may speak for any server by
naming ``server_user``: tests and tools do, no server needs to.

These (with presence, baselines and activity) are the only endpoints a
server's own token may use; every other one refuses it
(:mod:`hub_rtc.manager.actor` lists them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...decision import Principal
from ...records import Server, models
from ...records.queries import hosted_on
from ..access.people import People, person_in
from ..access.rights import Question, answer
from ..actor import SCOPE_ADMIN, SCOPE_AUTHORIZE, Actor, bound_server, holds_for
from ..context import Context
from ..errors import Forbidden
from ..ports import HostingError, ServerKey
from ..validate import folder
from ..views import iso, server_kernels
from .hosting import Hosting, server_label
from .shares import Shares


def server_of(caller: Actor, server_name: str, server_user: str | None = None) -> ServerKey:
    """The server ``caller`` speaks for (see the module docstring)."""
    if server_user is not None and (caller.kind != "user" or server_user != caller.name):
        if not caller.is_admin:
            raise Forbidden(f"server_user: speaking for another user's server needs {SCOPE_ADMIN}")
        return server_user, server_name
    if caller.kind != "user":
        raise Forbidden(f"a server speaks with its own hub token; a {caller.kind} must name"
                        f" server_user and hold {SCOPE_ADMIN}")
    server = caller.name, server_name
    bound = bound_server(caller)
    if bound is not None and bound != server:
        raise Forbidden(f"this token belongs to {server_label(bound)}, not to server {server_name!r}")
    if not holds_for(caller, SCOPE_AUTHORIZE, server):
        raise Forbidden(f"servers speak to hub_rtc with the {SCOPE_AUTHORIZE} scope")
    return server


class Servers:
    def __init__(self, ctx: Context, people: People, hosting: Hosting, shares: Shares) -> None:
        self.ctx = ctx
        self.people = people
        self.hosting = hosting
        self.shares = shares

    async def announce(self, caller: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """A server says it runs the extension: record it, let its sessions' members in."""
        server = server_of(caller, body["server_name"], body.get("server_user"))
        started = await self._run_started(server)
        try:
            ids = await self.ctx.db.run(lambda db: self._record(db, server, body, started))
        except IntegrityError:  # its first announcement, made at once through another replica
            ids = await self.ctx.db.run(lambda db: self._record(db, server, body, started))
        await self.shares.reconcile(server)
        return {"sessions": ids, "cache_seconds": self.ctx.hosting.rights_cache_seconds}

    async def _run_started(self, server: ServerKey) -> datetime | None:
        """The hub's start time of the server's current run, if the hub says."""
        if not self.hosting.managed:
            return None
        try:
            state = await self.ctx.directory.server(*server)
        except HostingError:
            return None  # fall back to comparing announcement and start times
        return state.started if state else None

    def _record(self, db: Session, server: ServerKey, body: dict[str, Any],
                started: datetime | None) -> list[str]:
        row = Server.find(db, *server)
        if row is None:
            row = Server(user=server[0], name=server[1])
            db.add(row)
        now = models.utcnow()
        row.version, row.base_url = body["version"], body["base_url"]
        row.announced_at, row.last_seen, row.run_started = now, now, started
        kernels = body.get("kernels")  # absent from older extensions: not known
        row.kernel_sandbox = bool(kernels["sandbox"]) if kernels else None
        row.kernel_sandbox_missing = str(kernels["missing"]) if kernels else ""
        row.kernel_account = bool(kernels.get("account")) if kernels else None
        row.kernel_account_missing = str(kernels.get("account_missing", "")) if kernels else ""
        return self.hosting.announced(db, server, body["version"])

    async def seen(self, server: ServerKey) -> None:
        """``server`` is still there (its events channel answered a ping): what the admin
        page's "last seen" says, which otherwise moved only when it (re)connected."""
        def touch(db: Session) -> None:
            row = Server.find(db, *server)
            if row is not None:
                row.last_seen = models.utcnow()
        await self.ctx.db.run(touch)

    async def hello(self, caller: Actor, server_name: str,
                    server_user: str | None = None) -> tuple[ServerKey, list[str]]:
        """A server opens its events channel: which server it is and its active sessions."""
        server = server_of(caller, server_name, server_user)

        def seen(db: Session) -> list[str]:
            row = Server.find(db, *server)
            if row is not None:
                row.last_seen = models.utcnow()
            return hosted_on(db, server)

        return server, await self.ctx.db.run(seen)

    async def list(self, caller: Actor) -> list[dict[str, Any]]:
        if not caller.is_admin:
            raise Forbidden(f"listing servers needs the {SCOPE_ADMIN} scope")
        policy = self.ctx.policy.kernel_isolation
        return await self.ctx.db.run(lambda db: _servers_json(db, policy))

    async def rights(self, caller: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """What ``body["user"]`` may do at ``body["path"]`` on the calling server."""
        server = server_of(caller, body["server_name"], body.get("server_user"))
        path = body.get("path")
        clean = folder(path, "path") if path is not None else None
        name = body["user"]
        hub_user = await self.ctx.directory.user(name)
        extra = {"expose_identity": self.ctx.policy.expose_identity_to_kernels,
                 "kernel_isolation": self.ctx.policy.kernel_isolation,
                 "cache_seconds": self.ctx.hosting.rights_cache_seconds}
        if hub_user is None:
            return {**_unknown(name), **extra}
        subject = Actor(name, hub_user.groups)
        q = Question(server, clean, self.ctx.policy.decision_view(), models.utcnow())
        found = await self.ctx.db.run(lambda db: self._answer(db, subject, q))
        if found is None:  # first sight of this user: register them, then answer
            await self.people.ensure(name)
            found = await self.ctx.db.run(lambda db: self._answer(db, subject, q))
        assert found is not None
        return {**found, **extra}

    def _answer(self, db: Session, subject: Actor, q: Question) -> dict[str, Any] | None:
        person = person_in(db, subject.name)
        if person is None:
            return None
        user, teams = person
        principal = Principal(subject.name, subject.groups, teams,
                              self.ctx.policy.watched_groups(subject.groups))
        return answer(db, user, principal, q)


def _unknown(name: str) -> dict[str, Any]:
    return {"user": {"id": None, "name": name, "display_name": name, "initials": name[:1].upper(),
                     "color": None},
            "session": None, "role": None, "read": False, "write": False, "execute": False,
            "terminal": False, "manage": False, "protected_cells": [],
            "reason": f"no hub user named {name!r}"}


def _servers_json(db: Session, kernel_policy: str) -> list[dict[str, Any]]:
    rows = list(db.scalars(select(Server).order_by(Server.user, Server.name)))
    out = []
    for row in rows:
        out.append({
            "user": row.user, "name": row.name, "version": row.version, "base_url": row.base_url,
            "announced_at": iso(row.announced_at), "last_seen": iso(row.last_seen),
            "sessions": hosted_on(db, (row.user, row.name)),
            "kernels": server_kernels(row, kernel_policy),
        })
    return out

