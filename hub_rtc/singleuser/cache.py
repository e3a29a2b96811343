"""Short-lived memory of the service's answers, dropped when it says so."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ..decision.access import Access

#: A "no" is kept only briefly: people are added to sessions without the
#: service telling the server, and a new member should not wait long.
NEGATIVE_SECONDS = 2.0


class AccessCache:
    """(user, path) → :class:`Access`, each entry kept ``ttl`` seconds at most."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple[str, str | None], tuple[float, Access]] = {}

    def get(self, user: str, path: str | None) -> Access | None:
        hit = self._entries.get((user, path))
        if hit is None:
            return None
        if self.clock() >= hit[0]:
            del self._entries[(user, path)]
            return None
        return hit[1]

    def put(self, user: str, path: str | None, access: Access) -> None:
        ttl = self.ttl if access.read else min(self.ttl, NEGATIVE_SECONDS)
        self._entries[(user, path)] = (self.clock() + ttl, access)

    def invalidate(self, session_id: str | None, users: Iterable[str] | None) -> None:
        """Forget answers about ``session_id`` (None: any) for ``users`` (None: everyone)."""
        names = None if users is None else set(users)
        for key, (_, access) in list(self._entries.items()):
            if names is not None and key[0] not in names:
                continue
            if session_id is None or access.session_id in (session_id, None):
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
