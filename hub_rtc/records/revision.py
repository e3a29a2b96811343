"""The access revision: one number the database moves whenever anything a decision
reads changes.

The service keeps what it loaded for a decision (a caller's teams, a session's
grants and cell rules, where its documents live) and asks only this number on
the next request.  It is moved by triggers in the database, not by the service's
code, so no path can forget it: the ORM, bulk statements, cascades, ``hub-rtc``
commands and another service replica on the same database all move it.  It
becomes visible in the same commit as the change it counts.

Which columns count: everything a decision, a standing or a document's place
reads.  ``sessions.last_activity`` and the rest of the bookkeeping do not, so
activity does not empty the cache.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

__all__ = ["REVISION_SQL", "REVISION_TABLE", "WATCHED", "access_revision", "create_triggers", "drop_triggers"]

REVISION_TABLE = "access_revision"

#: table -> the columns whose UPDATE counts (None: any update)
WATCHED: dict[str, tuple[str, ...] | None] = {
    "users": ("name",),
    "teams": ("name",),
    "team_members": None,
    "sessions": ("owner_id", "host", "server_user", "server_name", "root", "course", "state",
                 "expires_at", "ended_at", "hosting_state", "hosting_message"),
    "grants": None,
    "cell_rules": None,
    "cell_rule_writers": None,
}

#: the read, as plain SQL for a driver's own connection
REVISION_SQL = f"SELECT n FROM {REVISION_TABLE} WHERE id = 1"
_BUMP = f"UPDATE {REVISION_TABLE} SET n = n + 1 WHERE id = 1"
_FUNCTION = "hub_rtc_access_changed"


def access_revision(db: Session | Connection) -> int:
    """The current access revision (read it *before* the records it vouches for)."""
    return int(db.execute(text(REVISION_SQL)).scalar_one())


def create_triggers(conn: Connection) -> None:
    """The revision's one row and the triggers that move it, on SQLite or PostgreSQL."""
    conn.execute(text(f"INSERT INTO {REVISION_TABLE} (id, n) VALUES (1, 0)"))
    for sql in _create_sql(conn.dialect.name):
        conn.execute(text(sql))


def drop_triggers(conn: Connection) -> None:
    for table in WATCHED:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"DROP TRIGGER IF EXISTS {_name(table)} ON {table}"))
        else:
            for op in ("insert", "update", "delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {_name(table)}_{op}"))
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"DROP FUNCTION IF EXISTS {_FUNCTION}()"))


def _name(table: str) -> str:
    return f"hub_rtc_revision_{table}"


def _update_of(table: str) -> str:
    columns = WATCHED[table]
    return "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"


def _create_sql(dialect: str) -> Iterator[str]:
    if dialect == "postgresql":
        yield (f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
               f"BEGIN {_BUMP}; RETURN NULL; END $$")
        for table in WATCHED:
            # Deferred to the commit: the one row is locked last, after every other
            # lock the transaction takes, so it cannot be part of a deadlock.
            yield (f"CREATE CONSTRAINT TRIGGER {_name(table)} "
                   f"AFTER INSERT OR DELETE OR {_update_of(table)} ON {table} "
                   f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()")
        return
    for table in WATCHED:
        for op, event in (("insert", "INSERT"), ("update", _update_of(table)), ("delete", "DELETE")):
            yield (f"CREATE TRIGGER {_name(table)}_{op} AFTER {event} ON {table} "
                   f"BEGIN {_BUMP}; END")
