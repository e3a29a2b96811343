"""The server side's one door to the service's decisions.

Every check on this server goes through :class:`Gate`: it caches answers,
fails closed when the service cannot be asked, and keeps a register of live
sockets so that a push from the service ("access in session S shrank")
closes the affected ones at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from itertools import count

from .access import Access
from .cache import AccessCache
from .service import ServiceClient, ServiceUnavailable

Recheck = Callable[[], Awaitable[None]]

OWNER = Access(read=True, write=True, execute=True, terminal=True, manage=True, role="owner",
               reason="the server's owner")


@dataclass
class _Live:
    user: str
    session_id: str | None
    recheck: Recheck


class Gate:
    def __init__(self, client: ServiceClient | None, owner: str, cache: AccessCache,
                 log: logging.Logger) -> None:
        self.client = client
        self.owner = owner
        self.cache = cache
        self.log = log
        self._live: dict[int, _Live] = {}
        self._ids = count()

    def is_owner(self, user: str) -> bool:
        return user == self.owner

    async def access(self, user: str, path: str | None, *, fresh: bool = False) -> Access:
        """What ``user`` may do at ``path`` (None: anywhere on this server)."""
        if not fresh:
            hit = self.cache.get(user, path)
            if hit is not None:
                return hit
        if self.client is None:
            return Access.none("hub_rtc is not connected to its service on this server")
        try:
            answer = await self.client.rights(user, path)
        except ServiceUnavailable as e:
            self.log.error("hub_rtc: cannot ask the service about %s at %r: %s", user, path, e)
            return Access.none("the hub_rtc service could not be reached; try again shortly")
        self.cache.put(user, path, answer)
        return answer

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

    async def invalidate(self, session_id: str | None, users: Iterable[str] | None) -> int:
        """Forget cached answers and re-check the affected live sockets now.

        Returns how many sockets were re-checked.
        """
        names = None if users is None else set(users)
        self.cache.invalidate(session_id, names)
        hit = [live for live in list(self._live.values())
               if (session_id is None or live.session_id in (session_id, None))
               and (names is None or live.user in names)]
        for live in hit:
            try:
                await live.recheck()
            except Exception:  # one broken socket must not spare the others
                self.log.exception("hub_rtc: re-checking a socket of %s failed", live.user)
        return len(hit)

    async def forget_all(self) -> None:
        """The push channel was down: anything may have changed."""
        await self.invalidate(None, None)
