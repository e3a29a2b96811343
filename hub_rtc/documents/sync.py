"""A y-sync client for one collaboration room, for requests that read or change a
document once and leave.

The protocol part is sans-IO: :meth:`DocumentClient.receive` takes one frame from
the room and returns the frames to answer with.  The async methods drive it over
any room :class:`~hub_rtc.protocol.Channel` (the service's upstream websocket, or an
in-memory pair in the tests)::

    client = DocumentClient(channel)
    await client.sync()                      # answer the room's step 1, apply its step 2
    notebook = notebook_json(client.doc)
    outcome = await client.apply(lambda doc: replace_source(doc, "intro", "# Hi\\n"))
    if not outcome.held: ...                 # the room refused and reverted it

How a change is confirmed: after sending the update the client sends a sync step 1
and waits for the room's step 2.  The room handles one connection's messages in
order, so that answer is computed after the update was applied, and carries the
room's revert if it refused the change (the guarded room undoes a refused update
by broadcasting a revert to every client, the sender included).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycrdt import (
    Doc,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from ..protocol import Channel
from .notebook import Change, DocumentError, NotebookView

__all__ = ["DocumentClient", "NoAnswer", "Outcome", "RoomGone"]

log = logging.getLogger("hub_rtc.documents")


class RoomGone(DocumentError):
    """The room closed the connection, or sent something unreadable."""


class NoAnswer(DocumentError):
    """The room did not answer in time."""


@dataclass(frozen=True)
class Outcome:
    """What became of one change: ``held`` is False if the room reverted it."""

    held: bool
    change: Change


class DocumentClient:
    """A replica of one room's document, in step with the room, one change at a time."""

    def __init__(self, channel: Channel, *, timeout: float = 10.0) -> None:
        self.channel = channel
        self.timeout = timeout
        self.doc: Doc = Doc()
        self._answers = 0  # sync step 2 frames received from the room
        self._incoming = False
        self._remote_deletions: list[bytes] = []
        self._subscription = self.doc.observe(self._on_transaction)
        #: set while :meth:`pump` reads the room (then :meth:`sync` waits for it)
        self._pumping = False
        self._heard = asyncio.Event()
        self.closed = False
        self._view: NotebookView | None = None

    # -- sans-IO ---------------------------------------------------------

    def hello(self) -> bytes:
        """Sync step 1: our state vector, asking the room for what we lack."""
        return create_sync_message(self.doc)

    def receive(self, message: bytes) -> list[bytes]:
        """Take one frame from the room; the frames to send back.

        Sync frames are applied (a step 1 is answered with our step 2); awareness
        and jupyter's raw messages are not this client's business.
        """
        if len(message) < 2 or message[0] != YMessageType.SYNC:
            return []
        self._incoming = True
        try:
            reply = handle_sync_message(message[1:], self.doc)
        except Exception as e:  # pycrdt raises plain exceptions on malformed input
            raise RoomGone(f"the room sent an unreadable sync message ({e})") from None
        finally:
            self._incoming = False
        if message[1] == YSyncMessageType.SYNC_STEP2:
            self._answers += 1
        return [reply] if reply else []

    def _on_transaction(self, event: Any) -> None:
        # a TransactionEvent; its delete_set (encoded) is missing from pycrdt's stubs
        if self._incoming:
            self._remote_deletions.append(event.delete_set)

    # -- driving the channel -------------------------------------------------

    async def sync(self) -> None:
        """Catch up with the room: send step 1 and apply everything until its step 2."""
        wanted = self._answers + 1
        if self.closed:
            raise RoomGone("the room closed the connection")
        await self.channel.send(self.hello())
        deadline = asyncio.get_running_loop().time() + self.timeout
        while self._answers < wanted:
            if self._pumping:
                await self._heard_from_pump(deadline)
                continue
            message = await self._next(deadline)
            for reply in self.receive(message):
                await self.channel.send(reply)

    def pump(self) -> asyncio.Task[None]:
        """Read the room in the background until it closes, keeping the replica current
        between requests (a warm replica); :meth:`sync` and :meth:`apply` then wait for
        what it reads instead of reading themselves."""
        self._pumping = True  # now, not when the task first runs: nothing else may read
        return asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            while (message := await self.channel.recv()) is not None:
                for reply in self.receive(message):
                    await self.channel.send(reply)
                self._heard.set()
        except Exception:  # noqa: BLE001 - whatever broke, the replica is done
            log.info("a warm replica's room connection broke", exc_info=True)
        finally:
            self.closed = True
            self._heard.set()

    async def _heard_from_pump(self, deadline: float) -> None:
        if self.closed:
            raise RoomGone("the room closed the connection")
        self._heard.clear()
        left = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self._heard.wait(), max(left, 0.001))
        except TimeoutError:
            raise NoAnswer(f"the room did not answer within {self.timeout:g} s") from None

    async def _next(self, deadline: float) -> bytes:
        left = deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self.channel.recv(), max(left, 0.001))
        except TimeoutError:
            raise NoAnswer(f"the room did not answer within {self.timeout:g} s") from None
        if message is None:
            raise RoomGone("the room closed the connection")
        return message

    async def apply(self, edit: Callable[[Doc], Change]) -> Outcome:
        """Make ``edit`` on the replica, send it, and wait for the room's verdict."""
        change = edit(self.doc)
        if change.empty:
            return Outcome(True, change)
        self._remote_deletions.clear()
        await self.channel.send(create_update_message(change.update))
        await self.sync()
        return Outcome(not change.undone(self._remote_deletions, self.doc), change)

    def notebook(self) -> dict[str, Any]:
        """The replica as nbformat JSON (:class:`~.notebook.NotebookView`: a kept
        replica converts again only the cells that changed since the last call)."""
        if self._view is None:
            self._view = NotebookView(self.doc)
        return self._view.json()

    def forget(self) -> None:
        """Stop observing the replica (the client is done)."""
        self.doc.unobserve(self._subscription)
        if self._view is not None:
            self._view.close()
            self._view = None

