"""The access revision moves with every change a decision reads, and only then; the
cache of loaded records serves them while it stands and never past a change.

On SQLite and PostgreSQL, fresh (``create_all``) and migrated databases alike:
the triggers are the guarantee, so they are tried on what each path builds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from hub_rtc.manager.access.kept import Kept
from hub_rtc.records import Database, RTCSession, User, hold, upgrade
from hub_rtc.records.revision import WATCHED, access_revision

ROWS = [
    "INSERT INTO users (id, name, display_name, created) VALUES ('u1', 'alice', '', '2026-01-01')",
    "INSERT INTO users (id, name, display_name, created) VALUES ('u2', 'bob', '', '2026-01-01')",
    "INSERT INTO teams (id, name, owner_id, created) VALUES ('t1', 'red', 'u1', '2026-01-01')",
    "INSERT INTO sessions (id, title, owner_id, host, server_user, server_name, root, state,"
    " created, hosting_state, hosting_message)"
    " VALUES ('s1', 'Lab', 'u1', 'owner', 'alice', '', 'lab', 'active', '2026-01-01', 'ready', '')",
]

#: (change, whether a decision reads it)
CHANGES = [
    ("INSERT INTO team_members (team_id, user_id) VALUES ('t1', 'u2')", True),
    ("INSERT INTO grants (session_id, kind, principal, role, created)"
     " VALUES ('s1', 'user', 'u2', 'viewer', '2026-01-01')", True),
    ("UPDATE grants SET role = 'editor'", True),
    ("INSERT INTO cell_rules (session_id, path, cell_id, rule, created)"
     " VALUES ('s1', 'a.ipynb', 'c1', 'assigned', '2026-01-01')", True),
    ("INSERT INTO cell_rule_writers (rule_id, kind, principal)"
     " SELECT id, 'user', 'u2' FROM cell_rules", True),
    ("DELETE FROM cell_rule_writers", True),
    ("UPDATE sessions SET last_activity = '2026-01-02', title = 'Lab 2'", False),
    ("UPDATE sessions SET hosting_state = 'stopped'", True),
    ("UPDATE sessions SET expires_at = '2027-01-01'", True),
    ("UPDATE users SET display_name = 'Bob'", False),
    ("UPDATE users SET name = 'robert' WHERE id = 'u2'", True),
    ("UPDATE teams SET name = 'blue'", True),
    ("DELETE FROM team_members", True),
    ("DELETE FROM sessions", True),  # and its grants and rules, by cascade
]


@pytest.fixture(params=["created", "migrated"])
def database(request: pytest.FixtureRequest, db_url: str) -> Iterator[Database]:
    if request.param == "migrated":
        upgrade(db_url, "0007", backup=False)
        upgrade(db_url, backup=False)
    db = Database(db_url)
    db.check()
    with db.engine.begin() as conn:
        for sql in ROWS:
            conn.execute(text(sql))
    yield db
    db.dispose()


def _revision(db: Database) -> int:
    with db.engine.connect() as conn:
        return access_revision(conn)


def test_every_change_a_decision_reads_moves_the_revision_and_nothing_else(
        database: Database) -> None:
    for sql, counts in CHANGES:
        before = _revision(database)
        with database.engine.begin() as conn:
            assert conn.execute(text(sql)).rowcount > 0, sql  # the change did change a row
        assert (_revision(database) > before) == counts, sql


def test_holding_a_row_for_a_limit_moves_nothing(database: Database) -> None:
    before = _revision(database)
    database.transaction(lambda db: (hold(db, User, "u1"), hold(db, RTCSession, "s1")))
    assert _revision(database) == before
    assert database.transaction(lambda db: (db.get(User, "u1").display_name,
                                            db.get(RTCSession, "s1").title)) == ("", "Lab")


def test_a_change_counts_only_once_committed(database: Database) -> None:
    before = _revision(database)
    conn = database.engine.connect()
    conn.begin()
    conn.execute(text("UPDATE sessions SET state = 'ended'"))
    assert _revision(database) == before  # another connection: not yet
    conn.rollback()
    conn.close()
    assert _revision(database) == before


def test_every_watched_table_has_its_triggers(database: Database) -> None:
    with database.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = conn.execute(text(
                "SELECT event_object_table FROM information_schema.triggers"
                " WHERE trigger_name LIKE 'hub_rtc_revision_%'"))
        else:
            rows = conn.execute(text(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
                " AND name LIKE 'hub_rtc_revision_%'"))
        assert {r[0] for r in rows} == set(WATCHED)


async def test_the_event_loop_read_agrees_with_the_thread_read(database: Database) -> None:
    assert await database.revision() == _revision(database)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET state = 'ended'"))
    assert await database.revision() == _revision(database)


class Loads:
    """A loader that counts its calls and reads the session's state."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, db: Session) -> str | None:
        self.calls += 1
        return db.execute(text("SELECT state FROM sessions WHERE id = 's1'")).scalar()


async def test_kept_records_are_served_until_a_change_and_then_loaded_again(
        database: Database) -> None:
    kept: Kept[str] = Kept(database)
    load = Loads()
    assert [await kept.load("s1", load) for _ in range(3)] == ["active"] * 3
    assert load.calls == 1
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET state = 'ended'"))
    assert await kept.load("s1", load) == "ended"
    assert load.calls == 2
    with database.engine.begin() as conn:  # bookkeeping: kept
        conn.execute(text("UPDATE sessions SET last_activity = '2026-02-01'"))
    assert await kept.load("s1", load) == "ended"
    assert load.calls == 2


async def test_a_change_during_a_load_is_never_served_from_the_cache(
        database: Database) -> None:
    kept: Kept[str] = Kept(database)

    def moving(db: Session) -> str:
        with database.engine.begin() as conn:  # a change lands while this loads
            conn.execute(text("UPDATE sessions SET state = 'ended'"))
        return "stale"

    assert await kept.load("s1", moving) == "stale"
    load = Loads()
    assert await kept.load("s1", load) == "ended"
    assert load.calls == 1


async def test_a_load_that_saw_a_newer_revision_is_not_kept(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    kept: Kept[str] = Kept(database)
    read = database.revision

    async def then_a_change() -> int:
        revision = await read()
        with database.engine.begin() as conn:  # lands between the two reads
            conn.execute(text("UPDATE sessions SET state = 'ended'"))
        return revision

    monkeypatch.setattr(database, "revision", then_a_change)
    assert await kept.load("s1", Loads()) == "ended"
    assert len(kept) == 0


async def test_nothing_is_kept_for_none_and_the_oldest_goes_first(database: Database) -> None:
    kept: Kept[str] = Kept(database, size=2)
    assert await kept.load("nobody", lambda db: None) is None
    assert len(kept) == 0
    for key in ("a", "b", "c"):
        await kept.load(key, lambda db: "x")
    assert len(kept) == 2
    load = Loads()
    await kept.load("a", load)  # dropped: loaded again
    await kept.load("c", load)  # kept
    assert load.calls == 1
