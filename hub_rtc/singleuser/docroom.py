"""The guarded room's own hot path: durable before broadcast, no task per edit.

A :class:`GuardedDocumentRoom` is jupyter-collaboration's ``DocumentRoom``
(its file loader, saving, out-of-band handling, fork and timeline support)
with the per-update path replaced.  What changes, compared with stock:

- **Durable before broadcast.**  Every update the document accepts is queued;
  the room commits the queue to the :class:`~.updatelog.UpdateLog` (group
  commit: whatever arrived during the last commit goes in the next) and only
  then sends it to the clients, merged into one frame per batch.  A client
  that joins gets the document's state only once that state is committed.  So
  a SIGKILL at any moment loses no edit that any other client received.
- **Loading takes the newest.**  Every save (and every load or reload from the
  file) is marked in the store.  A restarted room loads the store and the
  file; where they differ it keeps the store if updates came after its last
  mark (edits the file lacks), and the file otherwise (changed on disk while
  the room was closed).  Stock always takes the file, which undid every edit
  made after the last save.  What the store gives is checked
  like the file is (``vet``, the disk guard): a kernel that could write the
  store speaks no louder than one that writes the file.
- **Frames written straight to each socket** (``push``), in order, without a
  task per client per update; a client whose socket backs up beyond
  ``c.HubRTCExtension.room_backlog_bytes`` (:data:`MAX_BACKLOG` by default) is
  closed and resyncs when it reconnects.
- **One save timer** instead of a task created and cancelled per edit: saved
  ``save_delay`` seconds after the last change, as stock does.
- **Awareness coalesced**: every client gets, at most every
  :data:`AWARENESS_SECONDS`, one frame with the newest state of each client
  that changed, instead of every client's every cursor move.
- No log records per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server_ydoc.rooms import DocumentRoom
from jupyter_server_ydoc.utils import LogLevel, OutOfBandChanges
from pycrdt import (
    TransactionEvent,
    YMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    merge_updates,
    read_message,
)

from .updatelog import BatchedYStore, Stored

#: awareness (cursors, selections, who is here) is sent at most this often, each
#: time with the newest state of every client that changed: a lecture hall's 300
#: viewers moving their cursors cost every receiver one frame per interval, not 300
AWARENESS_SECONDS = 0.05
#: by default, a client whose unsent frames exceed this many bytes is closed (it resyncs
#: on reconnect): ``c.HubRTCExtension.room_backlog_bytes``
MAX_BACKLOG = 64 * 1024 * 1024

#: checks a notebook model the store gives as if the file had given it; may
#: replace ``model["content"]`` with what may be believed
Vet = Callable[[dict[str, Any]], Awaitable[None]]


class GuardedDocumentRoom(DocumentRoom):
    """A document room whose updates are durable before anyone receives them."""

    def __init__(self, *args: Any, vet: Vet | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._vet = vet
        self._queue: list[bytes] = []
        self._wake = asyncio.Event()
        self._queued = 0  # updates queued since the room started
        self._durable = 0  # of those, committed (or given up on) and sent
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._save_timer: asyncio.TimerHandle | None = None
        self._changed_at = 0.0
        self._aware: set[int] = set()  # clients whose awareness changed since it was last sent
        self._aware_timer: asyncio.TimerHandle | None = None
        self.awareness.observe(self._awareness_changed)

    # -- every update --------------------------------------------------------------

    async def _watch_ready(self) -> None:
        await self.ready_event.wait()
        self._subscription = self.ydoc.observe(self._queue_update)
        self.ydoc_observed.set()

    def _queue_update(self, event: TransactionEvent) -> None:
        self._queue.append(event.update)
        self._queued += 1
        self._wake.set()

    async def _broadcast_updates(self) -> None:
        # the stock room's update stream (made in start()) is not used: the queue is
        self._update_send_stream.close()
        self._update_receive_stream.close()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    batch, self._queue = self._queue, []
                    await self._store(batch)
                    try:
                        self._fan_out(create_update_message(
                            batch[0] if len(batch) == 1 else merge_updates(*batch)))
                    except Exception:  # noqa: BLE001 - the next batch must still go out
                        self.log.error("hub_rtc: sending updates of %s failed", self._room_id,
                                       exc_info=True)
                    self._durable += len(batch)
                    self._release()
        except asyncio.CancelledError:
            pass

    async def _store(self, batch: list[bytes]) -> None:
        store = self.ystore
        if store is None:
            return
        try:
            if isinstance(store, BatchedYStore):
                # shielded: a room stopping must not cancel a commit other rooms share
                await asyncio.shield(store.append(batch))
            else:
                for update in batch:
                    await store.write(update)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Broadcast anyway: holding it back would split the replicas, and the
            # next save keeps the update in the file.
            self.log.error("hub_rtc: %d updates of %s could not be stored; sent on anyway",
                           len(batch), self._room_id, exc_info=True)

    def _fan_out(self, frame: bytes) -> None:
        for client in self.clients:
            push = getattr(client, "push", None)
            if push is not None:
                push(frame)
            elif self._task_group is not None:  # a channel of another kind
                self._task_group.start_soon(client.send, frame)

    def _release(self) -> None:
        """Wake whoever waits for the updates committed so far."""
        if not self._waiting:
            return
        still = []
        for target, future in self._waiting:
            if target > self._durable:
                still.append((target, future))
            elif not future.done():
                future.set_result(None)
        self._waiting = still

    async def durable(self) -> None:
        """Wait until every update the document has accepted so far is committed."""
        if self._durable >= self._queued:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((self._queued, future))
        await future

    # -- one client ----------------------------------------------------------------

    async def serve(self, channel: Any) -> None:
        self.clients.add(channel)
        try:
            await channel.send(create_sync_message(self.ydoc))
            async for message in channel:
                try:
                    await self._receive(channel, message)
                except Exception as e:  # noqa: BLE001 - the room decides what it can take
                    if not await self._handle_sync_message_error(e, message, channel):
                        raise
        except Exception as e:  # noqa: BLE001 - as stock: logged by the exception handler
            self._handle_exception(e)
        finally:
            self.clients.discard(channel)

    async def _receive(self, channel: Any, message: bytes) -> None:
        kind = message[0]
        if kind == YMessageType.SYNC:
            # Applied now; observing the doc queues it to be stored, then sent to all.
            reply = handle_sync_message(message[1:], self.ydoc)
            if reply is not None:
                await self.durable()  # the state in the reply is on disk before it leaves
                await channel.send(reply)
        elif kind == YMessageType.AWARENESS:
            # Taken into the room's awareness, whose observer collects who changed;
            # everyone (the sender too: it keeps its connection alive) gets the
            # latest state of each once per AWARENESS_SECONDS.
            self.awareness.apply_awareness_update(read_message(message[1:]), self)

    def _awareness_changed(self, topic: str, changes: tuple[dict[str, Any], Any]) -> None:
        if topic != "update" or changes[1] is not self:
            return  # (the server's own state is sent by the stock observer)
        for ids in changes[0].values():
            self._aware.update(ids)
        if self._aware and self._aware_timer is None:
            self._aware_timer = asyncio.get_running_loop().call_later(
                AWARENESS_SECONDS, self._send_awareness)

    def _send_awareness(self) -> None:
        """One awareness frame, with the newest state (or the departure) of each client
        that changed since the last one, to every client."""
        self._aware_timer = None
        ids, self._aware = sorted(self._aware), set()
        if ids:
            self._fan_out(create_awareness_message(self.awareness.encode_awareness_update(ids)))

    # -- loading ---------------------------------------------------------------------

    async def initialize(self) -> None:
        store = self.ystore
        if self.ready_event.is_set():
            return
        if self._document_load_progressively or not isinstance(store, BatchedYStore):
            await super().initialize()  # stock: the file wins over the store
            return
        self.log.info("Initializing room %s", self._room_id)
        model = await self._file.load_content(self._file_format, self._file_type)
        save = False
        async with self._update_lock:
            stored = await store.load(self.ydoc)
            if stored.newest is None:
                # as stock: the same history for the same content, whoever loads it
                await self._apply_deterministic_source_content(model["content"])
                await self._keep_state(store)
                self._emit(LogLevel.INFO, "load", "Content loaded from disk.")
            elif await self._document.aget() != model["content"]:
                save = await self._newest(store, stored, model)
            else:
                self._emit(LogLevel.INFO, "load", "Content loaded from the store.")
            self.ready = True
        await self.ydoc_observed.wait()
        self._emit(LogLevel.INFO, "initialize", "Room initialized")
        if save:
            self._save_to_disc()

    async def _newest(self, store: BatchedYStore, stored: Stored, model: dict[str, Any]) -> bool:
        """The store and the file differ: keep the newer. True: the file is behind.

        Newer is read from the store's save marks: updates after the last save are
        edits the file lacks; none, and the file changed on disk since.  A store
        without marks (written by stock) is compared with the file's time instead."""
        ahead = stored.ahead_of_save
        if ahead is None:
            modified: Any = model.get("last_modified")
            file_time = float(modified.timestamp()) if hasattr(modified, "timestamp") else 0.0
            ahead = (stored.newest or 0.0) > file_time
        if ahead:
            self.log.info("hub_rtc: %s has edits in the update store newer than its file; "
                          "loaded them, and the file is saved again", self._file.path)
            self._emit(LogLevel.INFO, "load", "Content loaded from the store (newer than the file).")
            if self._vet is not None:
                checked = {**model, "content": await self._document.aget()}
                content = checked["content"]
                await self._vet(checked)
                if checked["content"] is not content:  # put back what the store may not say
                    await self._document.aset(checked["content"])
                    await self._keep_state(store, saved=False)  # (saved next)
            return True
        self.log.info("hub_rtc: the file %s changed after its last stored update; loaded "
                      "the file", self._file.path)
        self._emit(LogLevel.INFO, "load", "Content loaded from disk (newer than the store).")
        await self._document.aset(model["content"])
        await self._keep_state(store)
        return False

    async def _keep_state(self, store: BatchedYStore, saved: bool = True) -> None:
        """Store the whole document (changes made before the room observes it); where
        it is what the file holds (``saved``), mark it so."""
        await asyncio.shield(store.append((self.ydoc.get_update(),)))
        if saved:
            await asyncio.shield(store.mark_saved(store.updates.stamp()))

    # -- saving ----------------------------------------------------------------------

    def _on_document_change(self, target: str, event: Any) -> None:
        if self._update_lock.locked() or self._save_delay is None:
            return  # the room's own writes (loading, saved state), or autosave off
        loop = asyncio.get_running_loop()
        self._changed_at = loop.time()
        if self._save_timer is None:
            self._save_timer = loop.call_later(self._save_delay, self._save_when_quiet)

    def _save_when_quiet(self) -> None:
        """The timer: save once nothing changed for ``save_delay`` seconds."""
        self._save_timer = None
        assert self._save_delay is not None
        loop = asyncio.get_running_loop()
        wait = self._changed_at + self._save_delay - loop.time()
        current: asyncio.Task[None] | None = getattr(self, "_saving_document", None)
        saving = current is not None and not current.done()
        if wait > 0 or saving:  # changed since, or still saving: look again later
            self._save_timer = loop.call_later(wait if wait > 0 else self._save_delay,
                                               self._save_when_quiet)
            return
        if not self._autosave():
            return
        self._saving_document = asyncio.create_task(self._maybe_save_document(None, save_now=True))

    async def _maybe_save_document(self, saving_document: asyncio.Task[None] | None,
                                   save_now: bool = False) -> None:
        """Save the document to its file, and mark in the store what the file now holds.

        As stock (one save at a time: a new one cancels the one under way; a file
        changed on disk meanwhile is loaded instead), with the mark added: the
        store's time taken just before the content is read, written once the file
        is, so that a restarted room can tell edits the file lacks from a file
        changed while it was closed."""
        if saving_document is not None and not saving_document.done():
            saving_document.cancel()
        if self._save_delay is None and not save_now:
            return
        store = self.ystore
        try:
            if not save_now:
                assert self._save_delay is not None
                await asyncio.sleep(self._save_delay)
            stamp = store.updates.stamp() if isinstance(store, BatchedYStore) else None
            queued = self._queued
            saved = await self._file.maybe_save_content({
                "format": self._file_format, "type": self._file_type,
                "content": await self._document.aget()})
            if saved:
                before = self._queued
                async with self._update_lock:  # (these two are updates of the document too)
                    self._document.dirty = False
                    self._document.hash = saved["hash"]
                if isinstance(store, BatchedYStore) and stamp is not None:
                    await self._mark_saved(store, stamp, queued == before, self._queued)
            self._emit(LogLevel.INFO, "save", "Content saved.")
        except asyncio.CancelledError:
            return
        except OutOfBandChanges:
            await self._reload_changed_file()
        except Exception as e:  # noqa: BLE001 - as stock: said, and the room goes on
            self.log.error("Error saving file: %s\n%r", self._file.path, e, exc_info=e)
            self._emit(LogLevel.ERROR, None, f"Error saving file: {self._file.path}\n{e!r}")

    async def _mark_saved(self, store: BatchedYStore, stamp: float, alone: bool,
                          own: int) -> None:
        """Mark the save in the store at ``stamp`` (taken before the content was read).

        Where nobody changed the document while it was saved (``alone``), the save's
        own state updates (not dirty, the file's hash; queued up to ``own``) count as
        saved too, or every restart would find "edits after the save" in them."""
        if alone:
            await self.durable()
            if self._queued == own:  # still nobody else: everything stored so far is saved
                stamp = store.updates.stamp()
        await asyncio.shield(store.mark_saved(stamp))

    async def _on_outofband_change(self) -> None:
        """The file changed on disk (the file watcher says): it wins, as stock, through
        the disk check, and the store is marked as saved with it."""
        await self._reload_changed_file("Out-of-band changes. Overwriting the room.")

    async def _reload_changed_file(self, why: str = "Out-of-band changes while saving.") -> None:
        self.log.info("Out-of-band changes. Overwriting the content in room %s", self._room_id)
        try:
            model = await self._file.load_content(self._file_format, self._file_type)
        except Exception as e:  # noqa: BLE001 - as stock: said, and the room keeps its content
            self.log.error("Error loading content from file: %s\n%r", self._file.path, e,
                           exc_info=e)
            self._emit(LogLevel.ERROR, None, f"Error loading content from file: {e!r}")
            return
        store = self.ystore
        stamp = store.updates.stamp() if isinstance(store, BatchedYStore) else None
        queued = self._queued
        async with self._update_lock:
            alone = self._queued == queued  # nobody changed the document since the stamp
            if await self._document.aget() != model["content"]:
                await self._document.aset(model["content"])
            self._document.dirty = False
        if isinstance(store, BatchedYStore) and stamp is not None:
            # the room now holds what the file holds: a later load must not take the
            # updates that brought it there for edits the file lacks
            await self._mark_saved(store, stamp, alone, self._queued)
        self._emit(LogLevel.INFO, "overwrite", why)

    def _autosave(self) -> bool:
        """As stock: autosave unless every client that says so turned it off."""
        states = [state.get("autosave", True) for state in self.awareness.states.values() if state]
        return any(states) if states else True

    async def stop(self) -> None:
        for timer in (self._save_timer, self._aware_timer):
            if timer is not None:
                timer.cancel()
        self._save_timer = self._aware_timer = None
        if self._queue and isinstance(self.ystore, BatchedYStore):
            # what the document took but the broadcaster has not reached: kept all the same
            batch, self._queue = self._queue, []
            try:
                await asyncio.shield(self.ystore.append(batch))
            except Exception:  # noqa: BLE001
                self.log.error("hub_rtc: updates of %s lost on close", self._room_id,
                               exc_info=True)
        await super().stop()
