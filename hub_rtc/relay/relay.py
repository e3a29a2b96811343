"""One relayed client: y-sync frames between it and its upstream room, both ways.

Transport-agnostic (asyncio only): the upstream is any room
:class:`~hub_rtc.protocol.Channel` and the client anything with the small
:class:`Client` interface, so the web layer adapts tornado's websockets and
the tests use in-memory pairs::

    relay = Relay(client, first_link, reconnect, limits)
    task = asyncio.ensure_future(relay.run())   # upstream -> client, reconnects
    relay.take(frame)                           # client -> upstream, per frame
    relay.stop()                                # the client went away

Back-pressure: the relay reads the next upstream frame only once the client
has taken the last one, and takes the next client frame only once the
upstream has taken the last one; so a relay holds at most one frame each way,
except while it reconnects, when client frames are held up to
``hold_bytes``.

Reconnecting without losing edits: when the upstream drops (its server was
killed, restarted, or the proxy lost its route) and comes back, the new room
starts by sending its sync step 1.  The relay passes it to the client, which
answers with a step 2 holding everything the room lacks, including every edit
it made while the room was away; and the relay sends the room a step 1 with an
empty state vector, so the room's whole state reaches the client.  Frames the
client sent meanwhile are held, and sent on after that answer (they are
already in it, so they change nothing; the order keeps the room from seeing an
update before what it builds on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..protocol import Channel, pump
from . import codes
from .backoff import Backoff
from .frames import EMPTY_STEP1, FrameKind, peek
from .held import HeldFrames, HeldOverflow

log = logging.getLogger("hub_rtc.relay")

#: an upstream that lived shorter than this did not really come back: keep backing off
STABLE_SECONDS = 5.0


class LinkClosed(Exception):
    """Sending on a link whose connection has closed."""


#: the upstream room connection: the one room :class:`~hub_rtc.protocol.Channel`
#: (its ``send`` raises :class:`LinkClosed` once closed)
Link = Channel


class Client(Protocol):
    """The relayed client's connection.  Not a whole channel: its transport hands
    the relay each frame it reads (:meth:`Relay.take`, which is what gives
    back-pressure towards it), so the relay only writes to it and closes it."""

    def send(self, frame: bytes) -> Awaitable[Any]:
        """Write ``frame``; the awaitable completes once the connection has taken it."""

    def close(self, code: int, reason: str) -> None: ...


class ConnectError(Exception):
    """Reaching the upstream room failed: ``transient`` failures are retried,
    others end the relay with ``code``."""

    def __init__(self, transient: bool, code: int, reason: str) -> None:
        super().__init__(reason)
        self.transient = transient
        self.code = code
        self.reason = reason


Connect = Callable[[], Awaitable[Link]]


@dataclass(frozen=True)
class RelayLimits:
    #: most bytes of client frames held while reconnecting
    hold_bytes: int = 4 * 1024 * 1024
    #: how long one outage may last before the client is closed
    reconnect_seconds: float = 120.0
    #: how long the client may take to accept one frame
    stall_seconds: float = 30.0
    #: largest frame carried either way (enforced by the transports)
    max_message_bytes: int = 128 * 1024 * 1024
    #: how long to wait for the client's answer to a new room's step 1
    resync_seconds: float = 10.0


@dataclass(frozen=True)
class Closing:
    """Why a relay ended: the code and reason the client is closed with (None: it left)."""

    code: int | None
    reason: str


class Relay:
    def __init__(self, client: Client, link: Link, connect: Connect, limits: RelayLimits,
                 *, name: str = "", backoff: Backoff | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.limits = limits
        self.name = name
        self.reconnects = 0
        self._link: Link | None = link
        self._connect = connect
        self._backoff = backoff or Backoff()
        self._clock = clock or asyncio.get_running_loop().time
        self._linked_at = self._clock()
        self._held = HeldFrames(limits.hold_bytes)
        self._last_awareness: bytes | None = None
        self._resyncing = False
        #: the new room's step 1 has reached the client (so its next step 2 is the answer)
        self._asked = False
        self._resync_timer: asyncio.TimerHandle | None = None
        self._resync_task: asyncio.Future[None] | None = None
        #: when the pending write to the client began (None: none pending)
        self._sending_since: float | None = None
        self._in_flight: asyncio.Future[Any] | None = None
        self._send_lock = asyncio.Lock()
        self._ended = asyncio.Event()
        self.closing: Closing | None = None

    # -- upstream -> client ------------------------------------------------

    async def run(self) -> Closing:
        """Carry upstream frames to the client until the relay ends; reconnects as needed."""
        watchdog = asyncio.ensure_future(self._watch_stalls())
        try:
            while self.closing is None:
                link = self._link
                assert link is not None
                await pump(link, self._to_client)
                await self._upstream_gone(link)
        except Exception:
            log.exception("relay %s failed", self.name)
            self._end(codes.INTERNAL_ERROR, "hub_rtc relay: internal error")
        finally:
            watchdog.cancel()
            self._drop_link()
        assert self.closing is not None
        return self.closing

    def _to_client(self, frame: bytes) -> Awaitable[None] | None:
        """One upstream frame to the client.  Called by the link as it reads each
        frame; the link reads the next only once what this returns is done, so a
        client that is slow to take frames slows its upstream (back-pressure).
        A write the socket took at once (the usual case) returns None: no task,
        no future, no trip through the event loop."""
        if self.closing is not None:
            return None
        if self._resyncing and not self._asked and peek(frame) is FrameKind.SYNC_STEP1:
            self._asked = True  # the client's next step 2 answers the new room
        try:
            written = self.client.send(frame)
            if isinstance(written, asyncio.Future) and written.done():
                written.result()
                return None
        except Exception as e:  # the client's connection is gone
            self._end(None, f"client gone: {e!r}")
            return None
        self._sending_since = self._clock()
        self._in_flight = sending = asyncio.ensure_future(written)
        taken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sending.add_done_callback(lambda done: self._taken(done, taken))
        return taken

    def _taken(self, sending: asyncio.Future[Any], taken: asyncio.Future[None]) -> None:
        """A pending write to the client ended: taken, failed, or cancelled by :meth:`_end`.
        ``taken`` never fails: the link's reader waits on it and must not see errors."""
        self._sending_since = self._in_flight = None
        if not sending.cancelled() and sending.exception() is not None:
            self._end(None, f"client gone: {sending.exception()!r}")
        if not taken.done():
            taken.set_result(None)

    async def _watch_stalls(self) -> None:
        """Close a client that has not taken a frame for ``stall_seconds``: it keeps its
        upstream waiting, and the server buffers for it meanwhile."""
        limit = self.limits.stall_seconds
        while self.closing is None:
            await self._pause(max(0.05, limit / 4))
            since = self._sending_since
            if since is not None and self._clock() - since > limit:
                self._end(codes.CLIENT_STALLED,
                          f"hub_rtc relay: the client took no message for {limit:g} s")

    # -- client -> upstream ------------------------------------------------

    def take(self, frame: bytes) -> Awaitable[None] | None:
        """Carry one client frame upstream (or hold it while reconnecting).  The
        transport reads the client's next frame only once what this returns is
        done (back-pressure); a frame the upstream socket took at once returns
        None, with no coroutine or task made for it."""
        if self.closing is not None:
            return None
        kind = peek(frame)
        if kind is FrameKind.AWARENESS:
            self._last_awareness = frame
        link = self._link
        if link is None or self._resyncing or self._send_lock.locked():
            return self._take_in_turn(frame, kind)
        try:
            written = link.send(frame)
        except LinkClosed:
            self._hold(frame)  # in the client's state, so in its answer after the reconnect
            return None
        if isinstance(written, asyncio.Future) and written.done() and written.exception() is None:
            return None
        return self._finish(frame, written)

    async def from_client(self, frame: bytes) -> None:
        """:meth:`take`, awaited."""
        pending = self.take(frame)
        if pending is not None:
            await pending

    async def _take_in_turn(self, frame: bytes, kind: FrameKind | None) -> None:
        """While reconnecting, or behind a flush of held frames: in order, under the lock."""
        async with self._send_lock:
            link = self._link
            if link is None or (self._resyncing and not (self._asked and kind is FrameKind.SYNC_STEP2)):
                self._hold(frame)
            elif self._resyncing:  # the client's answer to the new room's step 1
                await self._send(link, frame)
                await self._flush_held(link)
            else:
                await self._send(link, frame)

    async def _finish(self, frame: bytes, written: Awaitable[None]) -> None:
        try:
            await written
        except LinkClosed:
            self._hold(frame)

    async def _send(self, link: Link, frame: bytes) -> None:
        try:
            await link.send(frame)
        except LinkClosed:
            self._hold(frame)  # in the client's state, so in its answer after the reconnect

    def _hold(self, frame: bytes) -> None:
        try:
            self._held.add(frame)
        except HeldOverflow:
            self._end(codes.TRY_AGAIN_LATER,
                      "hub_rtc relay: too much sent while the server restarts; reconnect")

    async def _flush_held(self, link: Link) -> None:
        """After a reconnect: the client's awareness, then what it sent meanwhile."""
        self._resyncing = False
        if self._resync_timer is not None:
            self._resync_timer.cancel()
            self._resync_timer = None
        frames = self._held.take()
        if self._last_awareness is not None and self._last_awareness not in frames:
            frames.insert(0, self._last_awareness)
        for frame in frames:
            await self._send(link, frame)

    async def _flush_unanswered(self) -> None:
        async with self._send_lock:
            if self._resyncing and self._link is not None and self.closing is None:
                log.info("relay %s: no answer to the new room's step 1; sending held frames", self.name)
                await self._flush_held(self._link)

    # -- reconnecting ------------------------------------------------------

    async def _upstream_gone(self, link: Link) -> None:
        code, reason = link.close_code, link.close_reason
        if self.closing is not None:
            return
        if not codes.reconnects(code):
            self._end(codes.for_client(code), reason or f"hub_rtc relay: the room closed ({code})")
            return
        lived = self._clock() - self._linked_at
        self._drop_link()
        if lived >= STABLE_SECONDS:
            self._backoff.reset()
        log.info("relay %s: the room went away (%s); reconnecting", self.name, code)
        fresh = await self._reconnect()
        if fresh is not None:
            await self._relink(fresh)

    async def _reconnect(self) -> Link | None:
        deadline = self._clock() + self.limits.reconnect_seconds
        while self.closing is None:
            if self._clock() >= deadline:
                self._end(codes.TRY_AGAIN_LATER, "hub_rtc relay: the shared server is unreachable")
                return None
            await self._pause(self._backoff.delay())
            if self.closing is not None:
                return None
            try:
                return await self._connect()
            except ConnectError as e:
                if not e.transient:
                    self._end(e.code, e.reason)
                    return None
                log.debug("relay %s: not back yet: %s", self.name, e.reason)
        return None

    async def _relink(self, link: Link) -> None:
        if self.closing is not None:
            link.close()
            return
        self.reconnects += 1
        self._linked_at = self._clock()
        self._resyncing, self._asked = True, False
        self._link = link
        # the room's whole state, for the client to catch up with
        await self._send(link, EMPTY_STEP1)
        loop = asyncio.get_running_loop()
        self._resync_timer = loop.call_later(self.limits.resync_seconds, self._resync_overdue)

    def _resync_overdue(self) -> None:
        self._resync_task = asyncio.ensure_future(self._flush_unanswered())

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._ended.wait(), seconds)
        except TimeoutError:
            pass

    # -- ending ------------------------------------------------------------

    def stop(self) -> None:
        """The client went away: end the relay and close the upstream."""
        self._end(None, "the client left")

    def _end(self, code: int | None, reason: str) -> None:
        if self.closing is not None:
            return
        self.closing = Closing(code, reason)
        self._ended.set()
        if self._resync_timer is not None:
            self._resync_timer.cancel()
        if self._in_flight is not None:
            self._in_flight.cancel()  # a stalled write must not keep the relay alive
        self._drop_link()
        if code is not None:
            log.info("relay %s: closing the client with %d: %s", self.name, code, reason)
            self.client.close(code, reason)

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()
