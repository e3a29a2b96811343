"""Core tables: users, teams, sessions and grants.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    existing = _tables()
    if "users" not in existing:
        op.create_table(
            "users",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("hub_created", sa.DateTime()),
            sa.Column("display_name", sa.String(255), nullable=False, server_default=""),
            sa.Column("created", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_users"),
            sa.UniqueConstraint("name", name="uq_users_name"),
        )
    if "teams" not in existing:
        op.create_table(
            "teams",
            sa.Column("id", sa.String(32)),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("owner_id", sa.String(32), nullable=False),
            sa.Column("created", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_teams"),
            sa.UniqueConstraint("name", name="uq_teams_name"),
            sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_teams_owner_id_users"),
        )
    if "team_members" not in existing:
        op.create_table(
            "team_members",
            sa.Column("team_id", sa.String(32)),
            sa.Column("user_id", sa.String(32)),
            sa.PrimaryKeyConstraint("team_id", "user_id", name="pk_team_members"),
            sa.ForeignKeyConstraint(
                ["team_id"], ["teams.id"], name="fk_team_members_team_id_teams", ondelete="CASCADE"
            ),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], name="fk_team_members_user_id_users"
            ),
        )
        op.create_index("ix_team_members_user_id", "team_members", ["user_id"])
    if "sessions" not in existing:
        op.create_table(
            "sessions",
            sa.Column("id", sa.String(32)),
            sa.Column("title", sa.String(200), nullable=False),
            sa.Column("owner_id", sa.String(32), nullable=False),
            sa.Column("host", sa.String(16), nullable=False),
            sa.Column("server_user", sa.String(255), nullable=False),
            sa.Column("server_name", sa.String(255), nullable=False, server_default=""),
            sa.Column("root", sa.Text(), nullable=False, server_default=""),
            sa.Column("course", sa.String(255)),
            sa.Column("state", sa.String(16), nullable=False, server_default="active"),
            sa.Column("created", sa.DateTime(), nullable=False),
            sa.Column("expires_at", sa.DateTime()),
            sa.Column("last_activity", sa.DateTime()),
            sa.Column("ended_at", sa.DateTime()),
            sa.PrimaryKeyConstraint("id", name="pk_sessions"),
            sa.ForeignKeyConstraint(
                ["owner_id"], ["users.id"], name="fk_sessions_owner_id_users"
            ),
        )
    if "grants" not in existing:
        op.create_table(
            "grants",
            sa.Column("id", sa.Integer(), autoincrement=True),
            sa.Column("session_id", sa.String(32), nullable=False),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("principal", sa.String(255), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("expires_at", sa.DateTime()),
            sa.Column("granted_by_id", sa.String(32)),
            sa.Column("created", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_grants"),
            sa.UniqueConstraint(
                "session_id", "kind", "principal", name="uq_grants_session_id"
            ),
            sa.ForeignKeyConstraint(
                ["session_id"], ["sessions.id"], name="fk_grants_session_id_sessions",
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["granted_by_id"], ["users.id"], name="fk_grants_granted_by_id_users"
            ),
        )


def downgrade() -> None:
    if "team_members" in _tables():
        op.drop_index("ix_team_members_user_id", table_name="team_members")
    for table in ("grants", "sessions", "team_members", "teams", "users"):
        if table in _tables():
            op.drop_table(table)
