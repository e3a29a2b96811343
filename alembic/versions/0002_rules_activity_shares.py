"""Cell rules, aggregated activity and the hub shares the service made.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _session_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"], ["sessions.id"], name=f"fk_{table}_session_id_sessions",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    existing = _tables()
    if "cell_rules" not in existing:
        op.create_table(
            "cell_rules",
            sa.Column("id", sa.Integer(), autoincrement=True),
            sa.Column("session_id", sa.String(32), nullable=False),
            sa.Column("path", sa.String(1024), nullable=False),
            sa.Column("cell_id", sa.String(255), nullable=False),
            sa.Column("rule", sa.String(16), nullable=False),
            sa.Column("created_by_id", sa.String(32)),
            sa.Column("created", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_cell_rules"),
            sa.UniqueConstraint("session_id", "path", "cell_id", name="uq_cell_rules_session_id"),
            _session_fk("cell_rules"),
            sa.ForeignKeyConstraint(
                ["created_by_id"], ["users.id"], name="fk_cell_rules_created_by_id_users"
            ),
        )
    if "cell_rule_writers" not in existing:
        op.create_table(
            "cell_rule_writers",
            sa.Column("rule_id", sa.Integer()),
            sa.Column("kind", sa.String(8)),
            sa.Column("principal", sa.String(255)),
            sa.PrimaryKeyConstraint("rule_id", "kind", "principal", name="pk_cell_rule_writers"),
            sa.ForeignKeyConstraint(
                ["rule_id"], ["cell_rules.id"], name="fk_cell_rule_writers_rule_id_cell_rules",
                ondelete="CASCADE",
            ),
        )
    if "activity_events" not in existing:
        op.create_table(
            "activity_events",
            sa.Column("id", sa.Integer(), autoincrement=True),
            sa.Column("session_id", sa.String(32), nullable=False),
            sa.Column("user_id", sa.String(32), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("path", sa.String(1024), nullable=False, server_default=""),
            sa.Column("cell_id", sa.String(255), nullable=False, server_default=""),
            sa.Column("minute", sa.DateTime(), nullable=False),
            sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
            sa.PrimaryKeyConstraint("id", name="pk_activity_events"),
            sa.UniqueConstraint(
                "session_id", "user_id", "kind", "path", "cell_id", "minute",
                name="uq_activity_events_session_id",
            ),
            _session_fk("activity_events"),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], name="fk_activity_events_user_id_users"
            ),
        )
        op.create_index(
            "ix_activity_events_session_id", "activity_events", ["session_id"]
        )
    if "hub_shares" not in existing:
        op.create_table(
            "hub_shares",
            sa.Column("id", sa.Integer(), autoincrement=True),
            sa.Column("session_id", sa.String(32), nullable=False),
            sa.Column("server_user", sa.String(255), nullable=False),
            sa.Column("server_name", sa.String(255), nullable=False, server_default=""),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("principal", sa.String(255), nullable=False),
            sa.Column("created", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_hub_shares"),
            sa.UniqueConstraint(
                "session_id", "server_user", "server_name", "kind", "principal",
                name="uq_hub_shares_session_id",
            ),
            _session_fk("hub_shares"),
        )


def downgrade() -> None:
    existing = _tables()
    if "activity_events" in existing:
        op.drop_index("ix_activity_events_session_id", table_name="activity_events")
    for table in ("hub_shares", "activity_events", "cell_rule_writers", "cell_rules"):
        if table in existing:
            op.drop_table(table)
