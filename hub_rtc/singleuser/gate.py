"""The server side's one door to the service's decisions.

Every check on this server goes through :class:`Gate`: it caches answers,
fails closed when the service cannot be asked, and keeps a register of live
sockets so that a push from the service ("access in session S shrank")
narrows or closes the affected ones at once.  The service's operation that
changed rights waits for this server's acknowledgement, which is sent only
once :meth:`Gate.invalidate` returns: the cache is dropped and every affected
socket re-checked.

Answers asked for *before* a push but arriving *after* it could predate the
change; every push moves :attr:`Gate.epoch` on, and an answer fetched across
a move is asked for again rather than used or cached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from itertools import count

from ..decision.access import Access
from .cache import AccessCache
from .service import ServiceClient, ServiceUnavailable

Recheck = Callable[[], Awaitable[None]]


@dataclass
class _Live:
    user: str
    session_id: str | None
    recheck: Recheck


@dataclass(frozen=True)
class Rechecked:
    """What one invalidation did on this server."""

    sockets: int
    #: sockets whose re-check failed (logged); the acknowledgement says so
    failed: int = 0


#: an answer fetched while pushes kept arriving is asked for at most this often
_ASK_AGAIN = 3


class Gate:
    def __init__(self, client: ServiceClient | None, owner: str, cache: AccessCache,
                 log: logging.Logger) -> None:
        self.client = client
        self.owner = owner
        self.cache = cache
        self.log = log
        self._live: dict[int, _Live] = {}
        self._ids = count()
        #: moves on with every invalidation (see the module docstring)
        self.epoch = 0
        #: fetches under way, by (user, path, epoch): sockets re-checked together share one
        self._asking: dict[tuple[str, str | None, int], asyncio.Future[Access]] = {}
        #: set, and replaced, whenever the epoch moves (for :meth:`changed_since`)
        self._moved: asyncio.Event | None = None

    async def access(self, user: str, path: str | None, *, fresh: bool = False) -> Access:
        """What ``user`` may do at ``path`` (None: anywhere on this server)."""
        if not fresh:
            hit = self.cache.get(user, path)
            if hit is not None:
                return hit
        if self.client is None:
            return Access.none("hub_rtc is not connected to its service on this server")
        answer = Access.none("not asked yet")
        for _ in range(_ASK_AGAIN):
            epoch = self.epoch
            answer = await self._ask(user, path, epoch)
            if self.epoch == epoch:  # no push arrived meanwhile: the answer is current
                if answer.read or answer.reason != UNREACHABLE:
                    self.cache.put(user, path, answer)
                return answer
        return answer  # pushes keep coming: use the latest answer, cache none of them

    async def changed_since(self, epoch: int, timeout: float) -> bool:
        """Wait until a push moved the epoch past ``epoch`` (True), or ``timeout`` passed."""
        if self.epoch != epoch:
            return True
        if self._moved is None:
            self._moved = asyncio.Event()
        try:
            await asyncio.wait_for(self._moved.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _ask(self, user: str, path: str | None, epoch: int) -> Access:
        key = (user, path, epoch)
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._fetch(user, path))
            self._asking[key] = asking
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(asking)

    async def _fetch(self, user: str, path: str | None) -> Access:
        assert self.client is not None
        try:
            return await self.client.rights(user, path)
        except ServiceUnavailable as e:
            self.log.error("hub_rtc: cannot ask the service about %s at %r: %s", user, path, e)
            return Access.none(UNREACHABLE)

    async def identity_of(self, user: str) -> Access:
        """The service's answer that carries ``user``'s persistent identity."""
        return await self.access(user, None)

    def watch(self, user: str, session_id: str | None, recheck: Recheck) -> int:
        """Register a live socket; returns the key to :meth:`unwatch` it with."""
        key = next(self._ids)
        self._live[key] = _Live(user, session_id, recheck)
        return key

    def unwatch(self, key: int) -> None:
        self._live.pop(key, None)

    async def invalidate(self, session_id: str | None, users: Iterable[str] | None) -> Rechecked:
        """Forget cached answers and re-check the affected live sockets now, together.

        Returns once every re-check has finished: only then may the service be
        told the change is in force.
        """
        self.epoch += 1
        if self._moved is not None:
            self._moved.set()
            self._moved = None
        names = None if users is None else set(users)
        self.cache.invalidate(session_id, names)
        hit = [live for live in list(self._live.values())
               if (session_id is None or live.session_id in (session_id, None))
               and (names is None or live.user in names)]
        results = await asyncio.gather(*(live.recheck() for live in hit), return_exceptions=True)
        failed = 0
        for live, result in zip(hit, results, strict=True):
            if isinstance(result, BaseException):  # one broken socket must not spare the others
                failed += 1
                self.log.error("hub_rtc: re-checking a socket of %s failed", live.user,
                               exc_info=result)
        return Rechecked(len(hit), failed)

    async def forget_all(self) -> Rechecked:
        """The push channel was down: anything may have changed."""
        return await self.invalidate(None, None)


UNREACHABLE = "the hub_rtc service could not be reached; try again shortly"
