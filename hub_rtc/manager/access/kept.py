"""Records loaded for decisions, kept while the database's access revision stands.

A document call or an ``/authorize`` question used to load the same few rows
every time (the caller's teams, the session, its grants naming them, a cell's
rule): five to eleven statements and a trip to the database's thread, most of a
warm call's time.  Here they are loaded once and kept; each later request reads
one number, the access revision (:mod:`hub_rtc.records.revision`), which the
database's own triggers move in the same commit as any change a decision reads.
A different number empties the whole cache.

Only loaded records are kept, never an answer: every request still decides
afresh, at its own time (expiries) and under the policy in force.

Why it is safe: the revision is read before the records it vouches for, so
what is kept is never older than the number it is kept under.  A load that
saw a newer revision than the one being served is returned but not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from ...records import Database
from ...records.revision import access_revision

V = TypeVar("V")


class Kept(Generic[V]):
    """At most ``size`` loaded values by key, all from one access revision."""

    def __init__(self, db: Database, size: int = 4096) -> None:
        self.db = db
        self.size = size
        self._revision: int | None = None
        self._values: dict[Hashable, V] = {}

    async def load(self, key: Hashable, fn: Callable[[Session], V | None]) -> V | None:
        """``fn``'s value for ``key``: kept if the revision stands, else loaded (and kept
        unless it is None, or the records moved during the load)."""
        revision = await self.db.revision()
        if revision != self._revision:
            self._values.clear()
            self._revision = revision
        elif key in self._values:
            return self._values[key]
        seen, value = await self.db.run(lambda db: (access_revision(db), fn(db)))
        if value is not None and seen == self._revision:
            if len(self._values) >= self.size:
                del self._values[next(iter(self._values))]  # the oldest
            self._values[key] = value
        return value

    def __len__(self) -> int:
        return len(self._values)
