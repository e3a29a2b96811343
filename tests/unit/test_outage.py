"""The service's database goes away and comes back (a PostgreSQL restart): every
call meanwhile fails as "unavailable, try again" (the web layer's 503), nothing
half-made is left, and the next call after it is back succeeds on a new connection.

PostgreSQL is reached through a TCP relay in this process (:class:`tests.tcpcut.Cut`),
so the test can cut every connection and refuse new ones, as a restarting server
does, without restarting the server other tests share.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from hub_rtc.manager import Manager
from hub_rtc.records import Database, DatabaseUnavailable
from hub_rtc.records.database import unavailable
from tests.conftest import _postgres_url
from tests.tcpcut import Cut, relayed
from tests.unit.conftest import actor

ALICE = actor("alice", "cs101")


@pytest.fixture
def relayed_pg() -> Iterator[tuple[str, Cut]]:
    for url in _postgres_url():
        yield relayed(url)


@pytest.mark.postgres
async def test_calls_during_an_outage_fail_to_try_again_and_the_next_after_it_works(
        relayed_pg: tuple[str, Cut], directory, policy) -> None:
    url, relay = relayed_pg
    db = Database(url)
    db.check()
    manager = Manager(db, directory, policy)
    try:
        await manager.sessions.create(ALICE, {"title": "Before"})
        relay.cut()  # the server restarts: open connections die, new ones are refused
        for call in (lambda: manager.sessions.create(ALICE, {"title": "During"}),
                     lambda: manager.sessions.list(ALICE)):
            with pytest.raises(DatabaseUnavailable, match="cannot be reached right now"):
                await call()
        relay.start()  # back, on the same address
        await manager.sessions.create(ALICE, {"title": "After"})
        assert sorted(s["title"] for s in await manager.sessions.list(ALICE)) == ["After", "Before"]
    finally:
        db.dispose()


def test_only_faults_of_the_database_itself_are_unavailability(tmp_path) -> None:
    """A bad statement stays an error (a 500 to fix), on SQLite too, where both are
    OperationalError; a locked file is unavailability."""
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    db.check()
    with pytest.raises(DBAPIError) as bad:
        db.transaction(lambda s: s.execute(text("SELECT * FROM no_such_table")))
    assert not unavailable(bad.value, "sqlite")
    locked = OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))
    assert unavailable(locked, "sqlite")
    db.dispose()
