"""The records: the service's own SQL database (SQLAlchemy 2 models, alembic)."""

from .database import Database, SchemaMismatch, backup_sqlite, check_schema, upgrade
from .models import (
    ActivityEvent,
    CellBaseline,
    CellRule,
    CellRuleWriter,
    Grant,
    HubShare,
    Presence,
    RTCSession,
    Server,
    Team,
    TeamMember,
    User,
    Watcher,
    metadata,
    utcnow,
)

__all__ = [
    "ActivityEvent",
    "CellBaseline",
    "CellRule",
    "CellRuleWriter",
    "Database",
    "Grant",
    "HubShare",
    "Presence",
    "RTCSession",
    "SchemaMismatch",
    "Server",
    "Team",
    "TeamMember",
    "User",
    "Watcher",
    "backup_sqlite",
    "check_schema",
    "metadata",
    "upgrade",
    "utcnow",
]
