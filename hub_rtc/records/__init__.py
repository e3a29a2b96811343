"""The records: the service's own SQL database (SQLAlchemy 2 models, alembic)."""

from .database import Database, SchemaMismatch, backup_sqlite, check_schema, upgrade
from .models import (
    ActivityEvent,
    CellRule,
    CellRuleWriter,
    Grant,
    HubShare,
    RTCSession,
    Server,
    Team,
    TeamMember,
    User,
    metadata,
    utcnow,
)

__all__ = [
    "ActivityEvent",
    "CellRule",
    "CellRuleWriter",
    "Database",
    "Grant",
    "HubShare",
    "RTCSession",
    "SchemaMismatch",
    "Server",
    "Team",
    "TeamMember",
    "User",
    "backup_sqlite",
    "check_schema",
    "metadata",
    "upgrade",
    "utcnow",
]
