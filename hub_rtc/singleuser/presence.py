"""Who has which session's documents open on this server, for the service's UI."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

#: even with nothing changed, report this often: the service forgets silent servers
HEARTBEAT_SECONDS = 10.0


class PresenceReporter:
    """Counts open document connections per session and person.

    ``due()`` says when a report is worth sending: soon after a change (so
    a page shows a teammate online within seconds), else as a heartbeat.
    """

    def __init__(self) -> None:
        self._open: dict[str, Counter[str]] = defaultdict(Counter)
        self._reported: set[str] = set()
        self._changed = False
        self._last = 0.0

    def enter(self, session_id: str, user: str) -> None:
        self._open[session_id][user] += 1
        self._changed = True

    def leave(self, session_id: str, user: str) -> None:
        people = self._open.get(session_id)
        if people is None or people[user] <= 0:
            return
        people[user] -= 1
        if people[user] == 0:
            del people[user]
        self._changed = True

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self._changed or (bool(self._reported or self._open)
                                 and now - self._last >= HEARTBEAT_SECONDS)

    def report(self, now: float | None = None) -> dict[str, dict[str, int]]:
        """What to send: every session with someone in, plus those just emptied."""
        sessions = {sid: dict(people) for sid, people in self._open.items() if people}
        for sid in self._reported - set(sessions):
            sessions[sid] = {}  # tell the service they left
        self._reported = {sid for sid, people in sessions.items() if people}
        for sid in [sid for sid, people in self._open.items() if not people]:
            del self._open[sid]
        self._changed = False
        self._last = time.monotonic() if now is None else now
        return sessions

    def goodbye(self) -> dict[str, dict[str, int]]:
        """The server is stopping: everyone it reported leaves."""
        sessions: dict[str, dict[str, int]] = {sid: {} for sid in self._reported | set(self._open)}
        self._open.clear()
        self._reported.clear()
        return sessions

    def retry(self) -> None:
        """The report did not reach the service: send again next time."""
        self._changed = True
