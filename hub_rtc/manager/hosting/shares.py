"""JupyterHub shares follow grants: reconcile what should be shared with what was.

A server may host several sessions (folders of an owner's server) that want
the same person in, and JupyterHub keeps one share per server and person; so
reconciling works per *server*: the union of what its sessions want against
the union of what the service recorded making (``hub_shares``).  Shares
somebody else made are never touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...records import HubShare, models, queries
from ...records.queries import Pair, live
from ..context import Context
from ..ports import HostingError, ServerKey

log = logging.getLogger("hub_rtc.hosting")

__all__ = ["Shares", "record", "wanted"]


def wanted(db: Session, server: ServerKey, now: datetime, opening: Collection[str] = ()
           ) -> dict[str, set[Pair]]:
    """Per session on ``server`` that lets people in: who should reach the server.

    Only sessions whose server announced the extension (hosting ``ready``)
    let anyone in; team grants reach each team member, group grants the hub
    group, and instructors who joined read-only are let in too (what they may
    do is the ``observer`` role's, decided per request); the server's own
    user needs no share.  ``opening``: sessions about to be marked ready, let
    in first so that nobody sees "ready" before they can reach the server.
    """
    out: dict[str, set[Pair]] = {
        sid: {("user", owner)} if host == "account" else set()
        for sid, host, owner, expires in queries.letting_in(db, server, opening)
        if live(expires, now)
    }
    grants = queries.grant_rows(db, out)
    alive = [(sid, kind, key) for sid, kind, key, expires in grants if live(expires, now)]
    users = queries.principal_names(db, "user", [key for _, kind, key in alive if kind == "user"])
    teams = queries.team_members(db, [key for _, kind, key in alive if kind == "team"])
    for sid, kind, key in alive:
        if kind == "user" and key in users:
            out[sid].add(("user", users[key]))
        elif kind == "team":
            out[sid].update(("user", name) for name in teams.get(key, ()))
        elif kind == "group":
            out[sid].add(("group", key))
    for sid, name in queries.watchers_of(db, out):  # instructors who joined read-only
        out[sid].add(("user", name))
    for pairs in out.values():
        pairs.discard(("user", server[0]))
    return out


def record(db: Session, server: ServerKey, want: dict[str, set[Pair]], shared: set[Pair]) -> None:
    """Make ``hub_shares`` say what is shared now, and for which session.

    A share the hub still holds that no session wants (its withdrawal
    failed) keeps its rows, so the next reconcile tries again.
    """
    everyone = set().union(*want.values())
    keep = {(sid, pair) for sid, pairs in want.items() for pair in pairs if pair in shared}
    rows = db.scalars(select(HubShare).where(
        HubShare.server_user == server[0], HubShare.server_name == server[1]))
    present = set()
    for row in rows:
        key = (row.session_id, (row.kind, row.principal))
        if key in keep or (key[1] in shared and key[1] not in everyone):
            present.add(key)
        else:
            db.delete(row)
    for sid, (kind, principal) in sorted(keep - present):
        db.add(HubShare(session_id=sid, server_user=server[0], server_name=server[1],
                        kind=kind, principal=principal))


class Shares:
    """Creates and deletes the hub shares of a server until they match the grants."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._locks: dict[ServerKey, asyncio.Lock] = defaultdict(asyncio.Lock)
        #: servers where the hub failed a step that may work later; the sweep retries them
        self.retry: set[ServerKey] = set()

    async def reconcile(self, server: ServerKey, opening: Collection[str] = ()) -> None:
        """Share and unshare ``server`` as its sessions' grants say (counting the sessions
        in ``opening`` as ready already); never raises HostingError."""
        if not self.ctx.hosting.manage_hub_access:
            return
        # One reconcile per server at a time: in this process, then among replicas (two
        # at once would both record a share, or one would erase the other's record).
        async with self._locks[server], self.ctx.db.exclusive(f"hub_rtc shares {server!r}"):
            await self._reconcile(server, opening)

    async def _reconcile(self, server: ServerKey, opening: Collection[str]) -> None:
        now = models.utcnow()
        want, have = await self.ctx.db.run(
            lambda db: (wanted(db, server, now, opening), queries.recorded_shares(db, server)))
        everyone = set().union(*want.values())
        shared, retry = set(have), False
        hub = self.ctx.directory
        for pair in sorted(everyone - have):
            done, again = await self._try(hub.share, server, pair)
            if done:
                shared.add(pair)
            retry |= again
        for pair in sorted(have - everyone):
            done, again = await self._try(hub.unshare, server, pair)
            if done:
                shared.discard(pair)
            retry |= again
        await self.ctx.db.run(lambda db: record(db, server, want, shared))
        (self.retry.add if retry else self.retry.discard)(server)

    async def _try(self, step: Callable[[ServerKey, str, str], Awaitable[None]],
                   server: ServerKey, pair: Pair) -> tuple[bool, bool]:
        """Run one hub step: (done, worth retrying later)."""
        try:
            await step(server, *pair)
        except HostingError as e:
            log.warning("%s of %s/%s with %s %s failed: %s", step.__name__, *server, *pair, e)
            return False, e.retry
        return True, False
