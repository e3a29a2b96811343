"""Attribution: who changed which cell, counted and sent in batches.

With hub_rtc's update store (the default) the counts are kept in its database,
committed with the updates they count (:meth:`UpdateLog.count`), and sent from
there under a batch id the service counts once: a kill of the server loses no
count and doubles none, and counts the service could not take (it was stopped
first, or restarting) are sent when it is back, even after a restart of the
server.  Without it they are counted in memory, as before.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Protocol


class Journal(Protocol):
    """Where counts are made durable (:class:`~.updatelog.UpdateLog`)."""

    def count(self, key: tuple[str, str, str, str, str, str], n: int = 1) -> None: ...

Key = tuple[str, str, str, str, str, str]  # session, user, kind, path, cell, minute


def _minute(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")


class _MinuteClock:
    """The current minute as the service's string, formatted once per second at most:
    a count is taken per keystroke, and formatting dates is most of its cost."""

    def __init__(self) -> None:
        self._second = -1
        self._label = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._label = second, _minute()
        return self._label


class Tally:
    """Counts events per (session, user, kind, path, cell, minute).

    A keystroke is one count, not one record: the service stores one row per
    minute anyway, and a batch of counters is what keeps attribution off the
    hot path.
    """

    def __init__(self, max_keys: int = 50_000, journal: Journal | None = None) -> None:
        self.max_keys = max_keys
        self._counts: Counter[Key] = Counter()
        self._clock = _MinuteClock()
        self.dropped = 0
        #: where counts are made durable; None: in memory only
        self.journal = journal

    def add(self, session_id: str, user: str, kind: str, path: str = "",
            cell_id: str | None = None, count: int = 1, now: datetime | None = None) -> None:
        key = (session_id, user, kind, path, cell_id or "", _minute(now) if now else self._clock.now())
        if self.journal is not None:
            self.journal.count(key, count)
            return
        if key not in self._counts and len(self._counts) >= self.max_keys:
            self.dropped += count  # the service is unreachable for long: bound the memory
            return
        self._counts[key] += count

    def drain(self) -> dict[str, list[dict[str, Any]]]:
        """Everything counted so far, per session, in the service's activity format."""
        batches: dict[str, list[dict[str, Any]]] = {}
        for (session, user, kind, path, cell, minute), count in self._counts.items():
            event: dict[str, Any] = {"ts": minute, "user": user, "kind": kind, "path": path,
                                     "count": count}
            if cell:
                event["cell_id"] = cell
            batches.setdefault(session, []).append(event)
        self._counts.clear()
        return batches

    def restore(self, session_id: str, events: list[dict[str, Any]]) -> None:
        """Put back a batch the service did not take, so a restart loses nothing."""
        for e in events:
            key = (session_id, e["user"], e["kind"], e["path"], e.get("cell_id", ""), e["ts"])
            self._counts[key] += e["count"]

    def __len__(self) -> int:
        return len(self._counts)
