"""Telling shared servers that access may have shrunk, and hearing that they did.

The domain says *what* changed once its transaction has committed; the web
layer (``hub_rtc.adapters.events``) knows *how* to reach the server: it
writes an ``invalidate`` message, with an id, to that server's events
websocket.  The extension drops the rights it cached, re-checks every
affected socket (narrows its rights or closes it) and only then answers
``ack`` with that id.  The operation that changed rights waits, bounded, for
those answers before it answers its own caller (see
:meth:`hub_rtc.manager.hosting.hosting.Hosting.push`), so "done" means "in force on
the servers", or the answer says which servers have not confirmed yet.

What is still unconfirmed is kept by :class:`Unconfirmed`, in this service
process's memory: a late ``ack`` or the server reconnecting (it then forgets
every cached right and says ``ready``) clears it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from dataclasses import dataclass
from itertools import count
from typing import Any, Protocol

from .ports import ServerKey

# Why access may have shrunk (or who may write files changed): the ``reason`` of an
# invalidation.
MEMBER_REMOVED = "member removed"
#: nobody's access shrank, but a new member (a runner) may make the session's
#: notebook files answer to a stricter rule (hub_rtc.decision.file)
MEMBER_ADDED = "member added"
ROLE_CHANGED = "role changed"
GRANT_EXPIRED = "grant expired"
TEAM_CHANGED = "team membership changed"
CELL_RULES_CHANGED = "cell rules changed"
SESSION_ENDED = "session ended"
SESSION_EXPIRED = "session expired"
WATCHER_LEFT = "instructor left"


@dataclass(frozen=True)
class Invalidation:
    server: ServerKey
    session_id: str
    #: hub names whose rights changed; None: everyone in the session
    users: tuple[str, ...] | None
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What one server made of one push."""

    confirmed: bool
    #: why it is not confirmed (its channel closed, …); "" when confirmed
    why: str = ""


class Notifier(Protocol):
    def invalidate(self, change: Invalidation) -> Awaitable[Outcome | None] | None:
        """Push ``change`` to the server hosting the session, now; never raises.

        Returns what resolves once the server confirmed it (or can no longer:
        its channel closed), or None when the server has no events channel
        open with this service process, so nothing was sent.  With several
        replicas it may only learn later that no replica has one: then what it
        returned resolves to None.
        """


class NullNotifier:
    """Tells nobody: for tools and tests that run without servers."""

    def invalidate(self, change: Invalidation) -> Awaitable[Outcome | None] | None:
        return None


def invalidation(
    server: ServerKey, session_id: str, users: Collection[str] | None, reason: str
) -> Invalidation:
    return Invalidation(server, session_id, None if users is None else tuple(sorted(users)), reason)


@dataclass(frozen=True)
class PendingServer:
    """A server on which a change of rights is not known to be in force yet."""

    server: ServerKey
    why: str

    def json(self) -> dict[str, str]:
        return {"user": self.server[0], "name": self.server[1], "why": self.why}


@dataclass(frozen=True)
class Enforcement:
    """Whether a change of rights is in force on every server it concerns."""

    pending: tuple[PendingServer, ...] = ()

    @property
    def enforced(self) -> bool:
        return not self.pending

    def json(self) -> dict[str, Any]:
        """The fields every answer to a change of rights carries."""
        return {"enforced": self.enforced, "pending_servers": [p.json() for p in self.pending]}

    @classmethod
    def of(cls, pending: Collection[PendingServer]) -> Enforcement:
        """One entry per server (a change may touch several sessions on one server)."""
        first: dict[ServerKey, PendingServer] = {}
        for p in pending:
            first.setdefault(p.server, p)
        return cls(tuple(first[k] for k in sorted(first)))


class Unconfirmed:
    """Pushes servers have not confirmed yet, by session and server (this process only).

    Each push still awaiting its late ``ack`` is a ticket, which that ack
    settles.  What only the server's reconnection can settle (it was not
    connected, its channel closed first) is one entry per session and server,
    however often it happens.  The server saying ``ready`` (it reconnected
    and forgot every cached right) settles everything it had.
    """

    #: the ticket of what only the server saying ``ready`` settles
    UNTIL_READY = 0

    def __init__(self) -> None:
        self._open: dict[str, dict[ServerKey, dict[int, str]]] = {}
        self._tickets = count(1)

    def note(self, session_id: str, server: ServerKey, why: str, *, until_ready: bool = False) -> int:
        ticket = self.UNTIL_READY if until_ready else next(self._tickets)
        self._open.setdefault(session_id, {}).setdefault(server, {})[ticket] = why
        return ticket

    def settle(self, session_id: str, server: ServerKey, ticket: int) -> None:
        servers = self._open.get(session_id, {})
        servers.get(server, {}).pop(ticket, None)
        self._prune(session_id, server)

    def server_ready(self, server: ServerKey) -> None:
        for session_id in list(self._open):
            self._open[session_id].pop(server, None)
            self._prune(session_id, server)

    def of(self, session_id: str) -> Enforcement:
        """What is not yet in force in ``session_id``: the latest reason per server."""
        servers = self._open.get(session_id, {})
        return Enforcement.of([PendingServer(server, next(reversed(tickets.values())))
                               for server, tickets in servers.items() if tickets])

    def _prune(self, session_id: str, server: ServerKey) -> None:
        servers = self._open.get(session_id)
        if servers is None:
            return
        if not servers.get(server, True):
            del servers[server]
        if not servers:
            del self._open[session_id]
