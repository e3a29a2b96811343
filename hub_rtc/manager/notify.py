"""Telling shared servers that access may have shrunk, as a protocol.

The domain says *what* changed once its transaction has committed; the web
layer (``hub_rtc.service.events``) knows *how* to reach the server: it
writes an ``invalidate`` message to that server's events websocket.  The
extension then drops the rights it cached and closes the sockets of the
people named (``users`` None: everyone in the session).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from .directory import ServerKey

# Why access may have shrunk: the ``reason`` of an invalidation.
MEMBER_REMOVED = "member removed"
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


class Notifier(Protocol):
    def invalidate(self, change: Invalidation) -> None:
        """Push ``change`` to the server hosting the session, now; never raises."""


class NullNotifier:
    """Tells nobody: for tools and tests that run without servers."""

    def invalidate(self, change: Invalidation) -> None:
        return None


def invalidation(
    server: ServerKey, session_id: str, users: Collection[str] | None, reason: str
) -> Invalidation:
    return Invalidation(server, session_id, None if users is None else tuple(sorted(users)), reason)
