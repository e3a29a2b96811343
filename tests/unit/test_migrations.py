"""alembic migrations on SQLite and PostgreSQL: upgrade keeps rows, downgrade works,
and the models match what the migrations build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from hub_rtc.records import SchemaMismatch, check_schema, metadata, upgrade
from hub_rtc.records.database import current_revision, downgrade, make_engine

ROWS_0001 = [
    "INSERT INTO users (id, name, display_name, created) VALUES ('u1', 'alice', '', '2026-01-01 00:00:00')",
    "INSERT INTO users (id, name, display_name, created) VALUES ('u2', 'bob', '', '2026-01-01 00:00:00')",
    "INSERT INTO sessions (id, title, owner_id, host, server_user, server_name, root, state, created)"
    " VALUES ('s1', 'Lab', 'u1', 'owner', 'alice', '', 'lab', 'active', '2026-01-01 00:00:00')",
    "INSERT INTO grants (session_id, kind, principal, role, created)"
    " VALUES ('s1', 'user', 'u2', 'editor', '2026-01-01 00:00:00')",
]


def _count(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def _fill_0001(url: str) -> None:
    upgrade(url, "0001", backup=False)
    engine = make_engine(url)
    with engine.begin() as conn:
        for sql in ROWS_0001:
            conn.execute(text(sql))
    engine.dispose()


#: the newest migration: a new one moves this
HEAD = "0009"


def test_upgrade_from_first_revision_keeps_rows(db_url: str) -> None:
    _fill_0001(db_url)
    upgrade(db_url, backup=False)
    engine = make_engine(db_url)
    assert current_revision(engine) == HEAD
    tables = set(inspect(engine).get_table_names())
    assert {"activity_events", "activity_batches", "cell_baselines", "notebook_baselines"} <= tables
    assert {"kernel_sandbox", "kernel_sandbox_missing"} <= {
        c["name"] for c in inspect(engine).get_columns("servers")}
    engine.dispose()
    assert (_count(db_url, "users"), _count(db_url, "sessions"), _count(db_url, "grants")) == (2, 1, 1)


def test_downgrade_to_first_revision_and_to_base(db_url: str) -> None:
    _fill_0001(db_url)
    upgrade(db_url, backup=False)
    downgrade(db_url, "0001")
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert "cell_rules" not in tables and "grants" in tables
    engine.dispose()
    assert _count(db_url, "grants") == 1
    downgrade(db_url, "base")
    engine = make_engine(db_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    upgrade(db_url, backup=False)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_service_refuses_an_old_schema_and_names_the_fix(db_url: str) -> None:
    upgrade(db_url, "0001", backup=False)
    engine = make_engine(db_url)
    with pytest.raises(SchemaMismatch, match="hub-rtc upgrade-db"):
        check_schema(engine, db_url)
    engine.dispose()


def test_empty_database_is_created_at_head(db_url: str) -> None:
    engine = make_engine(db_url)
    check_schema(engine, db_url)
    assert current_revision(engine) == HEAD
    check_schema(engine, db_url)  # and is then accepted as it is
    engine.dispose()


def test_upgrade_db_command_backs_up_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rtc.sqlite'}"
    _fill_0001(url)
    out = subprocess.run(
        [sys.executable, "-m", "hub_rtc", "upgrade-db", "--db-url", url],
        capture_output=True, text=True, check=True,
    ).stdout
    backups = list(tmp_path.glob("rtc.sqlite.*.bak"))
    assert len(backups) == 1 and str(backups[0]) in out
    assert _count(f"sqlite:///{backups[0]}", "grants") == 1
    assert current_revision(make_engine(url)) == HEAD
