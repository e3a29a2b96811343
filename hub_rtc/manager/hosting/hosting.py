"""Where a session lives: its server, whether it runs the extension, who is let in.

Owner host: members reach the owner's server through shares, and only once
that server has announced the hub_rtc extension in its current run (without
the extension a share is full access).  Account host: the service creates
the hub user ``rtc-<id>``, starts its server in the background, and lets
members in when the extension on it announces itself.  ``hosting_state`` on
the session says how far that got (see ``records.models.HOSTING_STATES``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...records import RTCSession, Server, models
from ...records.queries import hosted_on, servers_of, unfinished
from ..context import Context
from ..errors import Conflict, NotFound, Unavailable
from ..notify import Enforcement, Invalidation, Outcome, PendingServer, Unconfirmed, invalidation
from ..ports import HostingError, ServerKey, ServerState
from .shares import Shares

log = logging.getLogger("hub_rtc.hosting")

UNMANAGED = ("unmanaged", "this hub's hub_rtc does not share servers (RTCService.manage_hub_access"
             " is False): nobody is let in through the hub by hub_rtc")
#: states an announcement of the extension turns into "ready".  Not "starting":
#: a new account's server announces itself before the hub has finished its
#: spawn and routed it, so the start task itself says when it is ready.
AWAITING = ("waiting", "failed")
#: the hosting states in which a session's server serves its rooms; any other
#: state (one added later too) does not, so documents fail closed
SERVING = frozenset({"ready", "unmanaged"})
_POLL_SECONDS = 0.25
__all__ = ["AWAITING", "SERVING", "UNMANAGED", "Hosting", "in_current_run", "serves", "server_label",
           "set_state"]


def serves(state: str) -> bool:
    """Whether a session in hosting ``state`` can serve its documents now."""
    return state in SERVING


def in_current_run(row: Server | None, state: ServerState | None) -> bool:
    """Whether the announcement ``row`` came from the run the hub reports now."""
    if row is None or state is None or state.started is None:
        return False
    if row.run_started is not None:  # both are the hub's own clock
        return row.run_started == state.started
    return row.announced_at >= state.started


def server_label(server: ServerKey) -> str:
    return f"{server[0]}'s server" + (f" {server[1]!r}" if server[1] else "")


def set_state(db: Session, session_ids: Collection[str], state: str, message: str,
              only: Collection[str] | None = None) -> list[str]:
    """Move sessions to hosting ``state`` (those in ``only``, if given); returns the moved ids."""
    query = update(RTCSession).where(RTCSession.id.in_(list(session_ids)))
    if only is not None:
        query = query.where(RTCSession.hosting_state.in_(list(only)))
    moved = db.scalars(query.values(hosting_state=state, hosting_message=message)
                       .returning(RTCSession.id)).all()
    return list(moved)


def _where(db: Session, session_id: str) -> tuple[str, ServerKey, str, str]:
    row = db.get(RTCSession, session_id)
    if row is None:
        raise NotFound(f"no session {session_id!r}")
    return row.host, (row.server_user, row.server_name), row.state, row.hosting_state


class Hosting:
    def __init__(self, ctx: Context, shares: Shares) -> None:
        self.ctx = ctx
        self.shares = shares
        #: background starts of collaboration accounts, by session id
        self._starting: dict[str, asyncio.Task[None]] = {}
        #: changes of rights servers have not confirmed yet (the session page shows them)
        self.unconfirmed = Unconfirmed()

    @property
    def managed(self) -> bool:
        return self.ctx.hosting.manage_hub_access

    def initial_state(self, host: str) -> tuple[str, str]:
        """Hosting state and message of a session being created."""
        if not self.managed:
            return UNMANAGED
        if host == "owner":
            return "ready", "the owner's server runs the hub_rtc extension"
        return "starting", "creating the collaboration account"

    # -- owner host ------------------------------------------------------------

    async def require_announced(self, server: ServerKey) -> None:
        """409 unless ``server`` runs and announced the extension in its current run."""
        if not self.managed:
            return
        where = server_label(server)
        try:
            state = await self.ctx.directory.server(*server)
        except HostingError as e:
            raise Unavailable(f"cannot ask the hub whether {where} runs: {e}") from None
        why = ("the hub_rtc extension must be running on it before others can be let in:"
               " a share without it would give full access")
        if state is None or not state.ready:
            raise Conflict(f"start {where} first; {why}")
        row = await self.ctx.db.run(lambda db: Server.find(db, *server))
        if not in_current_run(row, state):
            raise Conflict(f"{where} is running but has not announced the hub_rtc extension since it"
                           f" started (is hub-rtc[server] installed there?); {why}")

    # -- account host ------------------------------------------------------------

    def launch(self, session_id: str) -> None:
        """Set up the session's collaboration account in the background."""
        if not self.managed or session_id in self._starting:
            return
        task = asyncio.get_running_loop().create_task(self._start_account(session_id))
        self._starting[session_id] = task
        task.add_done_callback(lambda _: self._starting.pop(session_id, None))

    async def settle(self) -> None:
        """Wait until every background start has finished (tests, shutdown)."""
        while self._starting:
            await asyncio.gather(*list(self._starting.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._starting.values()):
            task.cancel()
        await self.settle()

    async def _start_account(self, session_id: str) -> None:
        _, (user, name), _, _ = await self.ctx.db.run(lambda db: _where(db, session_id))
        settings, hub = self.ctx.hosting, self.ctx.directory
        try:
            await hub.create_user(user)
            await self._progress(session_id, f"starting the server of collaboration account {user}")
            await hub.start_server(user, name, settings.server_start_timeout)
        except HostingError as e:
            await self._fail(session_id, f"could not start the server of collaboration account {user}: {e}")
            return
        await self._progress(session_id, f"{user}'s server is running; waiting for the hub_rtc"
                                         " extension on it to announce itself")
        if not await self._announced_within(session_id, settings.announce_timeout):
            await self._fail(session_id, (
                f"{user}'s server started, but the hub_rtc extension on it did not announce itself"
                f" within {settings.announce_timeout:g} s, so nobody was let in: is hub-rtc[server]"
                " installed and enabled in the single-user environment?"))

    async def _progress(self, session_id: str, message: str) -> None:
        await self.ctx.db.run(lambda db: set_state(db, [session_id], "starting", message, only=["starting"]))

    async def _fail(self, session_id: str, message: str) -> None:
        log.warning("session %s: %s", session_id, message)
        await self.ctx.db.run(lambda db: set_state(db, [session_id], "failed", message, only=["starting"]))
        _, server, _, _ = await self.ctx.db.run(lambda db: _where(db, session_id))
        await self.shares.reconcile(server)

    async def _announced_within(self, session_id: str, seconds: float) -> bool:
        """Wait for the server's announcement in its current run; then let members in."""
        _, server, _, _ = await self.ctx.db.run(lambda db: _where(db, session_id))
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            row = await self.ctx.db.run(lambda db: Server.find(db, *server))
            if row is not None and in_current_run(row, await self.ctx.directory.server(*server)):
                when = row.announced_at.strftime("%Y-%m-%d %H:%M:%S")
                message = f"hub_rtc {row.version} announced itself at {when} UTC"
                # members first, then "ready": whoever reads "ready" can reach the server
                await self.shares.reconcile(server, opening=[session_id])
                await self.ctx.db.run(lambda db, m=message: set_state(  # type: ignore[misc]
                    db, [session_id], "ready", m, only=["starting"]))
                await self.shares.reconcile(server)  # undoes a reconcile that ran in between
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_POLL_SECONDS)

    async def resume(self) -> None:
        """After a restart: carry on setting up accounts, and reconcile every server's shares
        once (failed hub calls were only remembered in memory)."""
        if not self.managed:
            return
        pending, servers = await self.ctx.db.run(unfinished)
        for session_id in pending:
            self.launch(session_id)
        for server in servers:
            await self.shares.reconcile(server)

    # -- telling servers -----------------------------------------------------------

    async def tell(self, session_ids: Collection[str], users: Collection[str] | None,
                   reason: str, *, reconcile: bool = True) -> Enforcement:
        """Invalidate rights in active sessions once the change has committed, reconcile
        shares meanwhile, and wait (bounded) until the servers confirm it is in force."""
        servers = await self.ctx.db.run(lambda db: servers_of(db, session_ids)) if session_ids else {}
        changes = [invalidation(server, sid, users, reason) for sid, server in sorted(servers.items())]
        confirming = asyncio.ensure_future(self.push(changes))
        try:
            for server in sorted(set(servers.values())) if reconcile else ():
                await self.shares.reconcile(server)
        finally:
            enforcement = await confirming
        return enforcement

    async def push(self, changes: Sequence[Invalidation]) -> Enforcement:
        """Send every change now, then wait up to ``push_ack_seconds`` for the servers.

        A change is in force on a server once it confirmed it (it dropped its
        cached rights and re-checked every affected socket), or when nothing
        there can be using older rights: the server never announced hub_rtc, or
        the hub says it is not running (it asks afresh when it starts).
        """
        sent = [(change, self.ctx.notifier.invalidate(change)) for change in changes]
        deadline = asyncio.get_running_loop().time() + self.ctx.hosting.push_ack_seconds
        found = await asyncio.gather(*(self._confirmed(change, receipt, deadline)
                                       for change, receipt in sent))
        return Enforcement.of([p for p in found if p is not None])

    async def _confirmed(self, change: Invalidation, receipt: Awaitable[Outcome | None] | None,
                         deadline: float) -> PendingServer | None:
        outcome: Outcome | None = None
        if receipt is not None:
            waiting = asyncio.ensure_future(receipt)
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            try:
                outcome = await asyncio.wait_for(asyncio.shield(waiting), left)
            except TimeoutError:
                why = (f"{server_label(change.server)} did not confirm within"
                       f" {self.ctx.hosting.push_ack_seconds:g} s that the change is in force")
                ticket = self.unconfirmed.note(change.session_id, change.server, why)
                waiting.add_done_callback(lambda done: self._late(change, ticket, done))
                return PendingServer(change.server, why)
        if outcome is None:  # no events channel of that server, here or at another replica
            unreached = await self._unreached(change.server)
            if unreached is None:
                return None
            self.unconfirmed.note(change.session_id, change.server, unreached, until_ready=True)
            return PendingServer(change.server, unreached)
        if outcome.confirmed:
            return None
        why = f"{server_label(change.server)}: {outcome.why}"
        self.unconfirmed.note(change.session_id, change.server, why, until_ready=True)
        return PendingServer(change.server, why)

    def _late(self, change: Invalidation, ticket: int, done: asyncio.Future[Outcome | None]) -> None:
        """What the server answered after the API did: in force now, or not until it is ready."""
        outcome = done.result() if not done.cancelled() and done.exception() is None else None
        if outcome is None or not outcome.confirmed:
            # (None: late news that no replica holds its channel: it drops every cached
            # right when it connects)
            why = f"{server_label(change.server)}: {outcome.why if outcome else 'no answer'}"
            self.unconfirmed.note(change.session_id, change.server, why, until_ready=True)
        self.unconfirmed.settle(change.session_id, change.server, ticket)

    async def _unreached(self, server: ServerKey) -> str | None:
        """Why a server with no events channel here may still use older rights; None if it cannot."""
        row = await self.ctx.db.run(lambda db: Server.find(db, *server))
        if row is None:
            return None  # never ran hub_rtc: it holds no rights of ours, nobody is let in by them
        label = server_label(server)
        if self.managed:
            try:
                state = await self.ctx.directory.server(*server)
            except HostingError as e:
                return (f"{label} is not connected to this service, and the hub could not say"
                        f" whether it runs: {e}")
            if state is None:
                return None  # not running: it asks afresh when it starts
        return (f"{label} is not connected to this service's events channel (it reconnects on its"
                " own, and then drops every cached right)")

    def server_ready(self, server: ServerKey) -> None:
        """The server (re)connected and forgot every cached right: all it had pending is in force."""
        self.unconfirmed.server_ready(server)

    # -- announcements, ends and revivals ----------------------------------------

    def announced(self, db: Session, server: ServerKey, version: str) -> list[str]:
        """The server announced the extension: its waiting sessions let members in.

        Runs inside the announcing transaction; returns the active sessions on it.
        """
        ids = hosted_on(db, server)
        if self.managed:
            when = models.utcnow().strftime("%Y-%m-%d %H:%M:%S")
            set_state(db, ids, "ready", f"hub_rtc {version} announced itself at {when} UTC", only=AWAITING)
        return ids

    async def withdraw(self, server: ServerKey, message: str) -> None:
        """Let nobody in any more until the server announces itself again."""
        moved = await self.ctx.db.run(
            lambda db: set_state(db, hosted_on(db, server), "waiting", message, only=["ready"]))
        if moved:
            log.warning("%s: %s", server_label(server), message)
            await self.shares.reconcile(server)

    async def server_stopped(self, server: ServerKey) -> None:
        """A server with members let in stopped: a dedicated one is started again,
        an owner's waits for its next announcement."""
        def move(db: Session) -> tuple[list[str], list[str]]:
            ready = hosted_on(db, server, ["ready"])
            accounts = list(db.scalars(select(RTCSession.id).where(
                RTCSession.id.in_(ready), RTCSession.host == "account")))
            restarted = set_state(db, accounts, "starting", "the session server stopped; starting it again")
            owners = set_state(db, sorted(set(ready) - set(accounts)), "waiting",
                               "the server stopped; members are let in again once it announces the"
                               " hub_rtc extension")
            return restarted, owners
        restarted, waiting = await self.ctx.db.run(move)
        if restarted or waiting:  # nobody in until the next run announces itself
            await self.shares.reconcile(server)
        for session_id in restarted:
            self.launch(session_id)

    async def stop(self, session_id: str, message: str, reason: str) -> Enforcement:
        """The session ended or expired: shares go, servers are told (and confirm), then a
        dedicated server stops."""
        task = self._starting.get(session_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        host, server, _, _ = await self.ctx.db.run(lambda db: _where(db, session_id))
        await self.ctx.db.run(lambda db: set_state(db, [session_id], "stopped", message))
        confirming = asyncio.ensure_future(self.push([invalidation(server, session_id, None, reason)]))
        try:
            await self.shares.reconcile(server)
        finally:
            enforcement = await confirming
        if self.managed and host == "account":
            try:
                await self.ctx.directory.stop_server(*server)
            except HostingError as e:
                log.warning("session %s: could not stop %s: %s", session_id, server_label(server), e)
        return enforcement

    async def revive(self, session_id: str) -> None:
        """An expired session's expiry moved into the future: host it again."""
        host, server, state, hosting = await self.ctx.db.run(lambda db: _where(db, session_id))
        if state != "active" or hosting != "stopped":
            return
        new_state, message = self.initial_state(host)
        if host == "owner" and self.managed:
            new_state, message = "waiting", "waiting for the server to announce the hub_rtc extension"
            if in_current_run(await self.ctx.db.run(lambda db: Server.find(db, *server)),
                              await self.ctx.directory.server(*server)):
                new_state, message = self.initial_state(host)
        await self.ctx.db.run(lambda db: set_state(db, [session_id], new_state, message))
        if new_state == "starting":
            self.launch(session_id)
        await self.shares.reconcile(server)
