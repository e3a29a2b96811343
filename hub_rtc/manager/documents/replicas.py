"""Warm replicas: the document API keeps a synced copy per (document, user) while in use.

Opening a room and syncing the whole notebook on every call cost 20-odd ms; a
replica kept open between calls is already in step (it reads the room's
broadcasts as they come).  A read costs one sync round trip, so that it holds
everything the room had when the call came; the room's answer carries only
what the replica lacks.  A change is made on the replica as it stands and
confirmed the same way as before (:class:`~hub_rtc.documents.DocumentClient`),
whose sync brings what others changed meanwhile: one round trip, not two.

A replica is the user's own room connection, opened as that user: the room
enforces and attributes exactly as for a fresh one, and closes it when the
user's access is withdrawn (the next call then opens a fresh one, which the
checks before it refuse).  Replicas unused for ``idle_seconds`` are closed;
calls on one replica take turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ...documents import BadEdit, CellNotFound, DocumentClient, DocumentError
from ...protocol import Channel
from ..ports import ServerKey

#: (server, the document's path on it, the user)
Key = tuple[ServerKey, str, str]
Open = Callable[[], Awaitable[Channel]]


@dataclass
class _Warm:
    client: DocumentClient
    pump: asyncio.Task[None]
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    used: float = 0.0

    def close(self) -> None:
        self.pump.cancel()
        self.client.forget()
        self.client.channel.close()


class Replicas:
    """The warm replicas of one service."""

    def __init__(self, idle_seconds: float = 30.0, timeout: float = 15.0) -> None:
        self.idle_seconds = idle_seconds
        self.timeout = timeout
        self._warm: dict[Key, _Warm] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._warm)

    @asynccontextmanager
    async def use(self, key: Key, open_channel: Open, *, catch_up: bool = True
                  ) -> AsyncIterator[DocumentClient]:
        """The replica of ``key``, for one call at a time: in step with its room
        (``catch_up``: one sync round trip first), or as the room's broadcasts left it."""
        warm = self._warm.get(key)
        if warm is not None and warm.client.closed:
            self._drop(key)  # its room closed it (a restart, access withdrawn): a fresh one
            warm = None
        fresh = warm is None
        if warm is None:
            warm = await self._open(key, open_channel)
        async with warm.turn:
            try:
                if catch_up and not fresh:
                    await warm.client.sync()  # what others changed since the last call
                yield warm.client
            except (CellNotFound, BadEdit):
                raise  # the request was wrong, not the replica
            except DocumentError:
                self._drop(key)  # in an unknown state: the next call starts afresh
                raise
            finally:
                warm.used = asyncio.get_running_loop().time()
                self._sweep_later()

    async def _open(self, key: Key, open_channel: Open) -> _Warm:
        channel = await open_channel()
        client = DocumentClient(channel, timeout=self.timeout)
        try:
            await client.sync()  # the whole notebook, once
        except BaseException:
            client.forget()
            channel.close()
            raise
        found = self._warm.get(key)
        if found is not None and not found.client.closed:  # another call opened one meanwhile
            client.forget()
            channel.close()
            return found
        warm = self._warm[key] = _Warm(client, client.pump())
        return warm

    def _drop(self, key: Key) -> None:
        warm = self._warm.pop(key, None)
        if warm is not None:
            warm.close()

    def _sweep_later(self) -> None:
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self.idle_seconds, self._sweep)

    def _sweep(self) -> None:
        """Close the replicas nobody used for ``idle_seconds``."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for key, warm in list(self._warm.items()):
            if not warm.turn.locked() and now - warm.used >= self.idle_seconds:
                self._drop(key)
        if self._warm:
            self._sweep_later()

    def close(self) -> None:
        """Close every replica (the service stops)."""
        for key in list(self._warm):
            self._drop(key)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
