"""Engine, schema check and migrations for the service's database."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from alembic import command

from ..resources import alembic_dir
from .models import metadata, utcnow
from .revision import REVISION_SQL, access_revision

T = TypeVar("T")
log = logging.getLogger("hub_rtc.records")


#: how often :meth:`Database.exclusive` tries again for a lock another process holds
_LOCK_POLL_SECONDS = 0.02
_TRY_LOCK = text("SELECT pg_try_advisory_lock(hashtextextended(:name, 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))")


class SchemaMismatch(RuntimeError):
    """The database is not at the revision this code expects."""


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached (or, for SQLite, stayed locked) for one
    transaction, which was rolled back or never began: worth trying again.  The
    web layer answers it with 503."""


#: what SQLite says when the fault is the file, not the statement
_SQLITE_TRANSIENT = ("database is locked", "unable to open database file", "disk i/o error")


def unavailable(e: DBAPIError, dialect: str) -> bool:
    """Whether ``e`` means "the database is not there right now" rather than a bad
    statement.  PostgreSQL's drivers raise OperationalError and InterfaceError only
    for the connection and the server (refused, reset, shut down, restarting); SQLite
    raises OperationalError for a bad statement too, so its message is read."""
    if e.connection_invalidated:
        return True
    if dialect != "sqlite":
        return isinstance(e, (OperationalError, InterfaceError))
    return isinstance(e, OperationalError) and any(
        words in str(e.orig).lower() for words in _SQLITE_TRANSIENT)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys and WAL turned on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(alembic_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None, "alembic/ holds no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine, url: str, *, create_if_empty: bool = True) -> None:
    """Refuse a schema that does not match; create a fresh one in an empty database.

    Raises :class:`SchemaMismatch` naming the command that fixes it.
    """
    tables = set(inspect(engine).get_table_names())
    if not tables - {"alembic_version"} and create_if_empty:
        metadata.create_all(engine)
        command.stamp(alembic_config(url), "head")
        log.info("Created a new hub_rtc database at revision %s", head_revision(url))
        return
    current, head = current_revision(engine), head_revision(url)
    if current != head:
        raise SchemaMismatch(
            f"The hub_rtc database is at revision {current or 'none (unmanaged tables)'},"
            f" this version needs {head}. Back it up and run:"
            f"  hub-rtc upgrade-db --db-url '{_safe(url)}'"
        )


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def upgrade(url: str, revision: str = "head", *, backup: bool = True) -> Path | None:
    """Migrate to ``revision``; back SQLite files up first.  Returns the backup."""
    saved = backup_sqlite(url) if backup else None
    command.upgrade(alembic_config(url), revision)
    return saved


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def backup_sqlite(url: str) -> Path | None:
    """Copy a SQLite database file aside, timestamped; None for other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    src = Path(parsed.database)
    if not src.exists():
        return None
    dest = src.with_name(f"{src.name}.{utcnow():%Y-%m-%d-%H%M%S}.bak")
    shutil.copy2(src, dest)
    log.info("Backed up %s to %s", src, dest)
    return dest


class Database:
    """The engine plus a session factory; runs blocking work off the event loop."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: a SQLite file's own connection for :meth:`revision` on the event loop
        self._reader: Any = None
        self._local = _sqlite_file(url)

    def check(self, *, create_if_empty: bool = True) -> None:
        check_schema(self.engine, self.url, create_if_empty=create_if_empty)

    def transaction(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction: committed if it returns, rolled back if it raises.

        Raises :class:`DatabaseUnavailable` if the database cannot be reached.  A
        connection lost during the commit itself leaves the outcome unknown: the
        caller is told to try again, and should read before repeating a create.
        """
        def begun() -> T:
            with self.sessions.begin() as db:
                return fn(db)
        return self._reached(begun)

    def _reached(self, fn: Callable[[], T]) -> T:
        """``fn()``, with a lost database raised as :class:`DatabaseUnavailable`."""
        try:
            return fn()
        except DBAPIError as e:
            if not unavailable(e, self.engine.dialect.name):
                raise
            raise DatabaseUnavailable(
                f"the service's database cannot be reached right now ({type(e.orig).__name__}); "
                "try again shortly") from e

    async def run(self, fn: Callable[[Session], T]) -> T:
        """:meth:`transaction` in a worker thread, so the event loop never blocks on SQL."""
        return await asyncio.to_thread(self.transaction, fn)

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one service process at a time, every replica on this database counted,
        for as long as the block runs: for work that is not one transaction (hub calls
        between reading and recording).

        On PostgreSQL it is a session-level advisory lock on a connection of its own,
        which the server releases if the process dies.  It is tried, not waited for,
        so that no worker thread blocks meanwhile.  SQLite is one process's own:
        nothing to do there (the caller keeps its in-process lock).
        """
        if self.engine.dialect.name != "postgresql":
            yield
            return
        held = await self.run_in_thread(lambda: self._try_lock(name))
        while held is None:
            await asyncio.sleep(_LOCK_POLL_SECONDS)
            held = await self.run_in_thread(lambda: self._try_lock(name))
        try:
            yield
        finally:
            await self.run_in_thread(lambda: self._unlock(held, name))

    async def run_in_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._reached, fn)

    def _try_lock(self, name: str) -> Connection | None:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if conn.execute(_TRY_LOCK, {"name": name}).scalar_one():
                return conn
        except BaseException:
            conn.close()
            raise
        conn.close()
        return None

    @staticmethod
    def _unlock(conn: Connection, name: str) -> None:
        try:
            conn.execute(_UNLOCK, {"name": name})
        finally:
            conn.close()  # a connection that broke took its lock with it

    async def revision(self) -> int:
        """The access revision (:mod:`~hub_rtc.records.revision`).

        On a SQLite file it is read on the event loop: one indexed row of a local
        file in WAL mode, where a reader never waits for a writer, costs a few
        microseconds, against a quarter of a millisecond for the trip to a thread.
        Any other database is read in a worker thread, like everything else.
        """
        if not self._local:
            return await self.run(access_revision)
        if self._reader is None:
            self._reader = self.engine.raw_connection()
        rows = self._reader.driver_connection.execute(REVISION_SQL).fetchall()
        return int(rows[0][0])

    def dispose(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.engine.dispose()


def _sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
