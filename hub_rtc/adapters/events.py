"""The events channel: the service pushes to shared servers over a websocket.

A server's extension connects to ``/api/v1/servers/events?server_name=…``
with its own hub token.  The service sends JSON text messages:

- ``{"type": "hello", "sessions": [ids]}`` once connected.  Anything pushed
  while it was not connected is lost, so it forgets every cached right.
- ``{"type": "invalidate", "id", "session_id", "users": [hub names] | null,
  "reason"}`` when access in a session on that server may have shrunk or
  cell rules changed; ``users`` null means everyone in the session.

The server answers:

- ``{"type": "ready"}`` once it has forgotten every cached right after
  (re)connecting: whatever was pending for it is in force now;
- ``{"type": "ack", "id", "rechecked", "failed"}`` once it has dropped the
  cached rights an ``invalidate`` names and re-checked every affected socket
  (``failed`` of them could not be: then the change is not confirmed).

:class:`EventHub` is the domain's :class:`~hub_rtc.manager.notify.Notifier`:
it writes each invalidation, as soon as the change has committed, to every
channel the hosting server has open with this service process, and resolves
the push once every one of them acknowledged it (a channel that closes first
resolves it as not confirmed).  The domain waits for that, bounded.
"""

from __future__ import annotations

import asyncio
import uuid
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..manager import Invalidation
from ..manager.notify import Outcome
from ..manager.ports import ServerKey

#: a channel with this many pushes it never acknowledged is closed: the server
#: reconnects and forgets every cached right, which is what they asked for
MAX_UNANSWERED = 1000
CLOSED_FIRST = ("its events channel closed before it confirmed the change (it drops every cached"
                " right when it reconnects)")


#: the close code of a channel the service drops so that its server reconnects and
#: forgets every cached right (1012: "service restart")
RECONNECT = 1012


class EventsChannel(Protocol):
    """One open events channel of a server (the web layer's websocket)."""

    def push(self, message: dict[str, Any]) -> Future[Outcome]: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class EventHub:
    """The open events channels, by server."""

    def __init__(self) -> None:
        self._channels: dict[ServerKey, set[EventsChannel]] = {}
        #: what to do when a server says ``ready``; the service wires it to the domain
        self.on_ready: Callable[[ServerKey], None] = lambda server: None

    def join(self, server: ServerKey, channel: EventsChannel) -> None:
        self._channels.setdefault(server, set()).add(channel)

    def leave(self, server: ServerKey, channel: EventsChannel) -> None:
        channels = self._channels.get(server, set())
        channels.discard(channel)
        if not channels:
            self._channels.pop(server, None)

    def connected(self, server: ServerKey) -> int:
        return len(self._channels.get(server, ()))

    def ready(self, server: ServerKey) -> None:
        """``server`` (re)connected and forgot every cached right."""
        self.on_ready(server)

    def invalidate(self, change: Invalidation) -> Awaitable[Outcome] | None:
        return self.send(change.server, message_of(change))

    def send(self, server: ServerKey, message: dict[str, Any]) -> Awaitable[Outcome] | None:
        """Write an ``invalidate`` to every channel ``server`` has open here; None if none."""
        channels = list(self._channels.get(server, ()))
        if not channels:
            return None
        return _every(channel.push(message) for channel in channels)

    def drop_all(self, reason: str) -> int:
        """Close every channel: each server reconnects and forgets every cached right.

        For when pushes may have been missed (the replicas' bus lost its connection).
        """
        channels = [c for held in self._channels.values() for c in held]
        for channel in channels:
            channel.close(RECONNECT, reason)
        return len(channels)


def message_of(change: Invalidation) -> dict[str, Any]:
    """The ``invalidate`` message for ``change``, with a fresh id."""
    return {"type": "invalidate", "id": uuid.uuid4().hex, "session_id": change.session_id,
            "users": list(change.users) if change.users is not None else None,
            "reason": change.reason}


async def _every(pushes: Any) -> Outcome:
    """Confirmed once every channel confirmed; else the first reason one did not."""
    outcomes = await asyncio.gather(*pushes)
    return next((o for o in outcomes if not o.confirmed), Outcome(True))


def acknowledged(ack: dict[str, Any]) -> Outcome:
    failed = ack.get("failed")
    if isinstance(failed, int) and failed > 0:
        return Outcome(False, f"{failed} of its sockets could not be re-checked (see its log)")
    return Outcome(True)


def consume(sent: Future[None]) -> None:
    """A write to a socket that closed meanwhile: nothing to do, nothing to log."""
    if not sent.cancelled():
        sent.exception()
