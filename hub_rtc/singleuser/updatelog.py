"""The update store, written in batches: durable before anyone else sees an update.

jupyter-collaboration's ``SQLiteYStore`` writes each Yjs update in a task of
its own, through three thread hops and one commit, after the room has already
sent it to every client: a SIGKILL loses edits that other clients saw, and
the store is most of the server's time per edit.  :class:`UpdateLog` keeps the
same SQLite file and schema (so a server can go back to stock and find its
documents) and writes by **group commit**: updates that arrive while a commit
is under way wait for the next one, which takes them all in one
``executemany``, one commit and one hop to its own writer thread.  The guarded
room awaits :meth:`UpdateLog.append` before it broadcasts.

Durability: the database runs in WAL mode with ``synchronous=NORMAL``.  A
committed batch survives the server process being killed at any point; after
a power loss the last batches may be gone, but the file stays consistent.
:class:`BatchedYStore` is the per-document face of the log that
jupyter-collaboration's rooms expect (``BaseYStore``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc
from pycrdt.store import BaseYStore, YDocNotFound

#: the schema version pycrdt-store's SQLiteYStore writes (``PRAGMA user_version``)
SCHEMA_VERSION = BaseYStore.version
#: after this many updates of one document, its checkpoint is rebuilt (so loading a
#: long-lived document applies at most this many updates after the checkpoint)
CHECKPOINT_EVERY = 500
#: a writer waits this long for another connection (a stock store) holding the lock
BUSY_SECONDS = 30.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS yupdates (path TEXT NOT NULL, yupdate BLOB, "
    "metadata BLOB, timestamp REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_yupdates_path_timestamp ON yupdates (path, timestamp)",
    "CREATE TABLE IF NOT EXISTS ycheckpoints (path TEXT NOT NULL, checkpoint BLOB NOT NULL, "
    "timestamp REAL NOT NULL, PRIMARY KEY(path))",
    # hub_rtc's own: activity counted and not yet taken by the service, and the one batch
    # of them being sent (stock jupyter-collaboration reads neither, and leaves them be)
    "CREATE TABLE IF NOT EXISTS hub_rtc_counts (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "session TEXT NOT NULL, user TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, "
    "cell TEXT NOT NULL, minute TEXT NOT NULL, count INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_rtc_batches (id TEXT PRIMARY KEY, upto INTEGER NOT NULL)",
)
#: counts staged with no update to ride with are committed on their own after this long
COUNT_SECONDS = 0.25

#: one row: (document path, update, metadata, timestamp)
Row = tuple[str, bytes, bytes, float]
#: what one activity count is of: (session, user, kind, path, cell, minute)
CountKey = tuple[str, str, str, str, str, str]

#: the metadata of a row that marks a save: the file holds every update stamped
#: before the marker's time.  Its update is the empty one, which every reader
#: (stock jupyter-collaboration's too) applies as nothing.
SAVED = b"hub_rtc:saved"
EMPTY_UPDATE = b"\x00\x00"


@dataclass(frozen=True)
class CountBatch:
    """The counts being sent to the service, under one id until it has them all."""

    id: str
    #: per session, in the service's activity format
    events: dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Stored:
    """What the store holds of one document."""

    #: its checkpoint and the updates after it, oldest first
    updates: list[bytes]
    #: the newest update's time (not counting save marks); None: nothing stored
    newest: float | None
    #: the time of the last save mark; None: no save was marked (a store written by stock)
    saved: float | None

    @property
    def ahead_of_save(self) -> bool | None:
        """Whether updates came after the last marked save (None: no save marked)."""
        if self.saved is None or self.newest is None:
            return None
        return self.newest > self.saved


class UpdateLog:
    """Every document's updates in one SQLite file, appended in batches.

    All database work runs on one thread of its own, in order; the event loop
    only waits for it.  One log per database file (:meth:`for_file`).
    """

    _open: dict[str, UpdateLog] = {}

    def __init__(self, db_path: str, log: logging.Logger | None = None) -> None:
        self.db_path = db_path
        self.log = log or logging.getLogger(__name__)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-rtc-ystore")
        self._db: sqlite3.Connection | None = None
        self._pending: list[Row] = []
        self._batch: asyncio.Future[None] | None = None  # what the pending rows wait for
        self._writing: asyncio.Task[None] | None = None
        self._last = 0.0  # the newest timestamp handed out: rows are strictly ordered
        self._since_checkpoint: dict[str, int] = {}
        self._counts: Counter[CountKey] = Counter()
        self._counts_due: asyncio.TimerHandle | None = None
        #: batches and rows committed, for benchmarks and tests
        self.commits = 0
        self.rows = 0

    @classmethod
    def for_file(cls, db_path: str, log: logging.Logger | None = None) -> UpdateLog:
        """The one log of ``db_path`` in this process."""
        key = os.path.abspath(db_path)
        found = cls._open.get(key)
        if found is None:
            found = cls._open[key] = cls(key, log)
        return found

    # -- the event loop's side -------------------------------------------------

    def append(self, path: str, updates: Iterable[bytes]) -> asyncio.Future[None]:
        """Queue ``updates`` of document ``path``; the future is done once they are
        committed (it raises if the commit failed)."""
        for update in updates:
            self._pending.append((path, update, b"", self.stamp()))
        return self._batch_future()

    def mark_saved(self, path: str, stamp: float) -> asyncio.Future[None]:
        """Note that the file of ``path`` now holds every update stamped before ``stamp``
        (a :meth:`stamp` taken just before the content saved was read)."""
        self._pending.append((path, EMPTY_UPDATE, SAVED, stamp))
        return self._batch_future()

    def count(self, key: CountKey, n: int = 1) -> None:
        """Stage ``n`` activity counts of ``key``, durable with the next commit.

        A count taken for an update is staged before the room appends that update, so
        it is committed with it, or with an earlier batch: never after it, so a kill
        cannot keep a document change whose count is lost.  Counts with no update to
        ride with (refusals, runs, saves) are committed on their own within
        :data:`COUNT_SECONDS`.
        """
        self._counts[key] += n
        if self._counts_due is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # (off the loop: it rides with the next commit or timer)
                return
            self._counts_due = loop.call_later(COUNT_SECONDS, self._due)

    def _due(self) -> None:
        self._counts_due = None
        if self._counts:
            self._batch_future()

    def _batch_future(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if self._batch is None:
            self._batch = loop.create_future()
        batch = self._batch
        if self._writing is None:
            self._writing = loop.create_task(self._write_batches())
        return batch

    def stamp(self) -> float:
        """A time later than every row's so far: rows are strictly ordered by it."""
        now = time.time()
        self._last = now if now > self._last else self._last + 1e-6
        return self._last

    async def _write_batches(self) -> None:
        """Commit what is pending, then what arrived meanwhile, until nothing is."""
        loop = asyncio.get_running_loop()
        try:
            # (counts alone do not keep it going: they wait for rows, or for _due)
            while self._pending or self._batch is not None:
                rows, self._pending = self._pending, []
                counts, self._counts = self._counts, Counter()
                done, self._batch = self._batch, None
                assert done is not None
                try:
                    await loop.run_in_executor(self._thread, self._commit, rows, counts)
                except Exception as e:  # noqa: BLE001 - handed to every waiter
                    if not done.done():
                        done.set_exception(e)
                    done.exception()  # a waiter that went away must not warn "never retrieved"
                else:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._writing = None

    async def take_counts(self) -> CountBatch | None:
        """The committed counts to send: the batch not confirmed yet if there is one
        (the same id again), else all counts so far under a new id; None: nothing."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._take_counts)

    async def confirm_counts(self, batch_id: str) -> None:
        """The service has every part of ``batch_id``: forget its counts."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._confirm_counts,
                                                         batch_id)

    async def read(self, path: str) -> Stored:
        """What is stored of ``path``."""
        await self.flushed()
        stored, latest = await asyncio.get_running_loop().run_in_executor(
            self._thread, self._read_all, path)
        # stamps stay ahead of every row, whatever the clock did since they were written
        self._last = max(self._last, latest)
        return stored

    async def history(self, path: str) -> list[tuple[bytes, float]]:
        """Every stored update of ``path`` with its time, oldest first (what
        jupyter-collaboration's timeline shows)."""
        await self.flushed()
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._history, path)

    async def flushed(self) -> None:
        """Wait until everything appended so far is committed (or failed)."""
        while self._writing is not None:
            await asyncio.shield(self._writing)

    def close(self) -> None:
        """Close the database once the commits already handed to its thread are done
        (for tests and benchmarks; a server keeps its log until it exits)."""
        type(self)._open.pop(self.db_path, None)
        self._thread.submit(self._close)
        self._thread.shutdown(wait=True)

    # -- the writer thread's side ------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.db_path, timeout=BUSY_SECONDS, isolation_level=None,
                                 check_same_thread=False)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "yupdates" in tables and version != SCHEMA_VERSION:
                raise RuntimeError(f"hub_rtc: {self.db_path} holds update store version {version},"
                                   f" not {SCHEMA_VERSION}; not writing into it")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
            self._db = db
        return self._db

    def _commit(self, rows: list[Row], counts: Counter[CountKey] | None = None) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO yupdates VALUES (?, ?, ?, ?)", rows)
            if counts:
                db.executemany("INSERT INTO hub_rtc_counts (session, user, kind, path, cell,"
                               " minute, count) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               [(*key, n) for key, n in counts.items()])
            for path, count in Counter(row[0] for row in rows).items():
                self._since_checkpoint[path] = self._since_checkpoint.get(path, 0) + count
                if self._since_checkpoint[path] >= CHECKPOINT_EVERY:
                    self._checkpoint(db, path)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1
        self.rows += len(rows)

    def _take_counts(self) -> CountBatch | None:
        db = self._connect()
        found = db.execute("SELECT id, upto FROM hub_rtc_batches").fetchone()
        if found is None:
            upto = db.execute("SELECT max(id) FROM hub_rtc_counts").fetchone()[0]
            if upto is None:
                return None
            found = (uuid.uuid4().hex, upto)
            # committed (autocommit) before anything is sent: a kill after sending
            # sends the same id again, which the service counts once
            db.execute("INSERT INTO hub_rtc_batches VALUES (?, ?)", found)
        events: dict[str, list[dict[str, Any]]] = {}
        for session, user, kind, path, cell, minute, n in db.execute(
                "SELECT session, user, kind, path, cell, minute, sum(count) FROM hub_rtc_counts"
                " WHERE id <= ? GROUP BY session, user, kind, path, cell, minute", (found[1],)):
            event: dict[str, Any] = {"ts": minute, "user": user, "kind": kind, "path": path,
                                     "count": n}
            if cell:
                event["cell_id"] = cell
            events.setdefault(session, []).append(event)
        return CountBatch(found[0], events)

    def _confirm_counts(self, batch_id: str) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute("SELECT upto FROM hub_rtc_batches WHERE id = ?", (batch_id,)).fetchone()
            if found is not None:
                db.execute("DELETE FROM hub_rtc_counts WHERE id <= ?", (found[0],))
                db.execute("DELETE FROM hub_rtc_batches WHERE id = ?", (batch_id,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _checkpoint(self, db: sqlite3.Connection, path: str) -> None:
        """Fold ``path``'s updates into its checkpoint (the rows stay: they are the
        document's history, which jupyter-collaboration's timeline reads)."""
        updates, newest = self._read(path)
        if updates:
            doc: Doc = Doc()
            for update in updates:
                doc.apply_update(update)
            db.execute("INSERT OR REPLACE INTO ycheckpoints (path, checkpoint, timestamp) "
                       "VALUES (?, ?, ?)", (path, doc.get_update(), newest))
        self._since_checkpoint[path] = 0

    def _read(self, path: str) -> tuple[list[bytes], float | None]:
        db = self._connect()
        found = db.execute("SELECT checkpoint, timestamp FROM ycheckpoints WHERE path = ?",
                           (path,)).fetchone()
        updates: list[bytes] = []
        newest: float | None = None
        since = 0.0
        if found is not None:
            updates.append(found[0])
            newest = since = found[1]
        # (>=: an update stamped as the checkpoint is applied twice, which Yjs ignores)
        for update, stamp in db.execute(
                "SELECT yupdate, timestamp FROM yupdates WHERE path = ? AND timestamp >= ? "
                "ORDER BY timestamp ASC", (path, since)):
            updates.append(update)
            newest = stamp if newest is None or stamp > newest else newest
        return updates, newest

    def _read_all(self, path: str) -> tuple[Stored, float]:
        db = self._connect()
        updates, _ = self._read(path)
        newest, saved = db.execute(
            "SELECT max(CASE WHEN metadata IS NOT ? THEN timestamp END),"
            " max(CASE WHEN metadata IS ? THEN timestamp END) FROM yupdates WHERE path = ?",
            (SAVED, SAVED, path)).fetchone()
        if newest is None and updates:  # only a checkpoint left (stock squashed the rows)
            newest = db.execute("SELECT timestamp FROM ycheckpoints WHERE path = ?",
                                (path,)).fetchone()[0]
        latest = db.execute("SELECT max(timestamp) FROM yupdates").fetchone()[0] or 0.0
        return Stored(updates, newest if updates else None, saved), float(latest)

    def _history(self, path: str) -> list[tuple[bytes, float]]:
        return list(self._connect().execute(
            "SELECT yupdate, timestamp FROM yupdates WHERE path = ? ORDER BY timestamp ASC",
            (path,)))

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class BatchedYStore(BaseYStore):
    """One document's store, on the server's :class:`UpdateLog`.

    What jupyter-collaboration hands its rooms (``YDocExtension.ystore_class``);
    the guarded room uses :meth:`append` and :meth:`load` and waits for them.
    """

    #: the database file; :func:`on_file` makes the class a server hands its rooms
    db_path = ".jupyter_ystore.db"

    def __init__(self, path: str, metadata_callback: Any = None,
                 log: logging.Logger | None = None, **_config: Any) -> None:
        # (_config: jupyter-collaboration passes its traitlets config to every store)
        self.path = path
        self.metadata_callback = metadata_callback
        self.log = log or logging.getLogger(__name__)
        self.updates = UpdateLog.for_file(self.db_path, self.log)

    async def start(self, *, task_status: Any = None, from_context_manager: bool = False) -> None:
        # nothing to run: the log writes for every document
        if task_status is not None:
            task_status.started()
        self.started.set()

    async def stop(self) -> None:
        await self.updates.flushed()
        self.stopped.set()

    def append(self, updates: Iterable[bytes]) -> asyncio.Future[None]:
        """Queue ``updates``; the future is done once they are durable."""
        return self.updates.append(self.path, updates)

    async def write(self, data: bytes) -> None:
        await self.append((data,))

    async def load(self, ydoc: Doc) -> Stored:
        """Apply what is stored to ``ydoc``, and say what that was."""
        stored = await self.updates.read(self.path)
        for update in stored.updates:
            ydoc.apply_update(update)
        return stored

    def mark_saved(self, stamp: float) -> asyncio.Future[None]:
        """The file now holds every update stamped before ``stamp``."""
        return self.updates.mark_saved(self.path, stamp)

    async def apply_updates(self, ydoc: Doc) -> None:
        if (await self.load(ydoc)).newest is None:
            raise YDocNotFound

    async def read(self) -> AsyncIterator[tuple[bytes, bytes, float]]:  # type: ignore[override]
        rows = await self.updates.history(self.path)
        if not rows:
            raise YDocNotFound
        for update, stamp in rows:
            yield update, b"", stamp


def on_file(db_path: str) -> type[BatchedYStore]:
    """A :class:`BatchedYStore` class whose stores write into ``db_path``."""
    return type("HubRTCYStore", (BatchedYStore,), {"db_path": db_path})
