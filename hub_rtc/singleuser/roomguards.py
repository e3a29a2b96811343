"""One guard per live document room, whose mirror exists only while the room is edited.

A :class:`~hub_rtc.guard.DocumentGuard` checks updates against a *mirror*: a second
pycrdt replica of the room's document.  pycrdt spends about 3 KiB per notebook cell
on a replica (its shared types are large in memory, not on the wire), so a mirror
doubles what a document costs the server.  Most rooms of a class are open and idle
most of the time, so a room's mirror is made when an update first needs checking,
and dropped once no update was checked for ``idle_seconds``; the next update rebuilds
it from the room's document, as a guard that lost step with the room is rebuilt.

What this changes for a check: nothing.  Every update still goes through a mirror
that holds exactly what the room holds; only the empty update every client sends
when it joins (its sync answer, when it has nothing the room lacks) is accepted
without one, as the guard would accept it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Subscription

from ..guard import DocumentGuard, Limits, Rights, Verdict

__all__ = ["EMPTY_UPDATE", "GUARD_IDLE_SECONDS", "RoomGuard", "RoomGuards"]

#: an update with no structs and no deletions: what a client that has nothing the
#: room lacks answers to the room's sync step 1
EMPTY_UPDATE = b"\x00\x00"
#: a room's mirror is dropped after this many seconds without a checked update
GUARD_IDLE_SECONDS = 60.0

Clock = Callable[[], float]


class RoomGuard:
    """The guard of one room: its mirror made on demand, following the room's doc."""

    def __init__(self, room: Any, limits: Limits, clock: Clock,
                 on_made: Callable[[], None]) -> None:
        self.limits = limits
        # weak: the room's doc holds the room (its observers), and the room is the
        # key that lets RoomGuards forget this guard
        self._room = weakref.ref(room)
        self._clock = clock
        self._on_made = on_made
        self._guard: DocumentGuard | None = None
        self._subscription: Subscription | None = None
        #: when an update was last checked (or the mirror made)
        self.used_at = clock()

    @property
    def held(self) -> bool:
        """True while the mirror exists."""
        return self._guard is not None

    @property
    def stale(self) -> bool:
        """True once the mirror may differ from the room (then :meth:`reset` it)."""
        return self._guard is not None and self._guard.stale

    @property
    def mirror(self) -> DocumentGuard:
        """The guard holding the mirror, made if need be (for tests and diagnostics)."""
        return self._made()

    @property
    def doc(self) -> Doc[Any]:
        """The mirror's document, made if need be (for tests and diagnostics; do not edit it)."""
        return self._made().doc

    def check(self, update: bytes, rights: Rights) -> Verdict:
        """:meth:`DocumentGuard.check` on the mirror (made if need be)."""
        self.used_at = self._clock()
        if self._guard is None and update == EMPTY_UPDATE:
            return Verdict(accepted=True, forward=update)  # nothing to integrate or judge
        return self._made().check(update, rights)

    def reset(self) -> None:
        """Rebuild the mirror from the room's doc (after a verdict left it stale)."""
        room = self._room()
        if self._guard is not None and room is not None:
            self._guard.reset(room.ydoc.get_update())

    def drop(self) -> None:
        """Forget the mirror; the next check makes a new one from the room's doc."""
        room = self._room()
        if self._subscription is not None and room is not None:
            room.ydoc.unobserve(self._subscription)
        self._guard = None
        self._subscription = None

    def _made(self) -> DocumentGuard:
        if self._guard is not None:
            return self._guard
        room = self._room()
        if room is None:
            raise RuntimeError("hub_rtc: the room of this guard is gone")
        guard = DocumentGuard(room.ydoc.get_update(), limits=self.limits)
        # Whatever the room's doc accepts from now on (other clients, the file on
        # disk, the update store) the mirror follows, in the same transaction order.
        self._subscription = room.ydoc.observe(lambda event: guard.follow(event.update))
        self._guard = guard
        self.used_at = self._clock()
        self._on_made()
        return guard


class RoomGuards:
    """One :class:`RoomGuard` per live document room.

    Every connection to a room shares its guard; a room that is gone (the stock
    handler drops rooms nobody uses) takes its guard with it.  While any mirror is
    held, a timer drops those idle for ``idle_seconds`` (0: mirrors are kept as
    long as their rooms).
    """

    def __init__(self, limits: Limits | None = None, *, idle_seconds: float = GUARD_IDLE_SECONDS,
                 clock: Clock = time.monotonic) -> None:
        self.limits = limits or Limits()
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._guards: weakref.WeakKeyDictionary[Any, RoomGuard] = weakref.WeakKeyDictionary()
        self._timer: asyncio.TimerHandle | None = None

    def for_room(self, room: Any) -> RoomGuard:
        """``room``'s guard (anything with a pycrdt ``ydoc``), made on first use."""
        found = self._guards.get(room)
        if found is None:
            found = RoomGuard(room, self.limits, self._clock, self._schedule)
            self._guards[room] = found
        return found

    def sweep(self) -> int:
        """Drop the mirrors idle for ``idle_seconds``; how many are still held."""
        now = self._clock()
        held = 0
        for guard in list(self._guards.values()):
            if guard.held and self.idle_seconds and now - guard.used_at >= self.idle_seconds:
                guard.drop()
            held += guard.held
        return held

    def held(self) -> int:
        """How many rooms hold a mirror now."""
        return sum(guard.held for guard in list(self._guards.values()))

    def __len__(self) -> int:
        return len(self._guards)

    def _schedule(self) -> None:
        """A mirror was made: make sure a sweep comes (none without a running loop)."""
        if self._timer is not None or not self.idle_seconds:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # (unit tests without a loop sweep by hand)
        self._timer = loop.call_later(self.idle_seconds / 2, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.sweep():
            self._schedule()
