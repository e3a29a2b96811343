"""The sweep: what time alone changes, applied without anyone acting.

Expired sessions stop (shares deleted, dedicated servers stopped, servers
told); expired grants stop letting people in (shares reconciled, servers
told); a server whose current run has not announced the extension within
the grace period loses its shares until it does.  The service runs
:meth:`Sweeper.sweep` every ``RTCService.sweep_seconds``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ...records import ActivityBatch, Grant, RTCSession, Server, models
from ...records.queries import audience
from ..context import Context
from ..hosting.hosting import Hosting, in_current_run, server_label
from ..hosting.shares import Shares
from ..notify import GRANT_EXPIRED, SESSION_EXPIRED
from ..ports import HostingError, ServerKey

log = logging.getLogger("hub_rtc.hosting")


def _expired_sessions(db: Session, now: datetime) -> list[str]:
    return list(db.scalars(select(RTCSession.id).where(
        RTCSession.state == "active", RTCSession.expires_at <= now,
        RTCSession.hosting_state != "stopped")))


def _lapsed_grants(db: Session, since: datetime, now: datetime) -> list[tuple[str, list[str] | None]]:
    """(session, who lost access) for grants that expired in (since, now]."""
    rows = db.execute(
        select(Grant.session_id, Grant.kind, Grant.principal)
        .join(RTCSession, RTCSession.id == Grant.session_id)
        .where(RTCSession.state == "active", Grant.expires_at > since, Grant.expires_at <= now)
    ).all()
    return [(sid, audience(db, kind, key)) for sid, kind, key in rows]


def _letting_in(db: Session) -> dict[ServerKey, Server | None]:
    """Servers with members let in (a ready session), with their last announcement."""
    keys = {(user, name) for user, name in db.execute(
        select(RTCSession.server_user, RTCSession.server_name).where(
            RTCSession.state == "active", RTCSession.hosting_state == "ready"))}
    return {key: Server.find(db, *key) for key in sorted(keys)}


class Sweeper:
    def __init__(self, ctx: Context, hosting: Hosting, shares: Shares) -> None:
        self.ctx = ctx
        self.hosting = hosting
        self.shares = shares
        #: grants that expired before this were dealt with (or before the service started)
        self.since = models.utcnow()

    async def sweep(self) -> None:
        """One pass; safe to run at any time, and again."""
        now = models.utcnow()
        for session_id in await self.ctx.db.run(lambda db: _expired_sessions(db, now)):
            await self.hosting.stop(session_id, "the session expired; nobody is let in", SESSION_EXPIRED)
        since, self.since = self.since, now
        for session_id, users in await self.ctx.db.run(lambda db: _lapsed_grants(db, since, now)):
            await self.hosting.tell([session_id], users, GRANT_EXPIRED)
        await self.ctx.db.run(lambda db: _forget_batches(db, now))
        if self.hosting.managed:
            await self._unannounced(now)
            for server in sorted(self.shares.retry):
                await self.shares.reconcile(server)

    async def _unannounced(self, now: datetime) -> None:
        servers = await self.ctx.db.run(_letting_in)
        if not servers:
            return
        try:
            active = await self.ctx.directory.active_servers()
        except HostingError as e:
            log.warning("sweep: cannot list the hub's servers: %s", e)
            return
        grace = self.ctx.hosting.announce_grace
        for server, announced in servers.items():
            state = active.get(server)
            if state is None:
                await self.hosting.server_stopped(server)
            elif (not in_current_run(announced, state) and state.started is not None
                  and (now - state.started).total_seconds() > grace):
                await self.hosting.withdraw(server, (
                    f"{server_label(server)} restarted and did not announce the hub_rtc extension"
                    f" within {grace:g} s: nobody is let in until it does"))


#: how long a recorded activity batch id is kept: a server sends a batch again until the
#: service confirms it, which a server that is back within this long still gets counted once
BATCHES_KEPT = timedelta(days=7)


def _forget_batches(db: Session, now: datetime) -> None:
    db.execute(delete(ActivityBatch).where(ActivityBatch.recorded_at < now - BATCHES_KEPT))
