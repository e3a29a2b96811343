"""Announced servers and where each session's hosting stands.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    return {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    if "servers" not in _tables():
        op.create_table(
            "servers",
            sa.Column("id", sa.Integer(), autoincrement=True),
            sa.Column("user", sa.String(255), nullable=False),
            sa.Column("name", sa.String(255), nullable=False, server_default=""),
            sa.Column("version", sa.String(64), nullable=False, server_default=""),
            sa.Column("base_url", sa.String(1024), nullable=False, server_default=""),
            sa.Column("announced_at", sa.DateTime(), nullable=False),
            sa.Column("run_started", sa.DateTime()),
            sa.Column("last_seen", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_servers"),
            sa.UniqueConstraint("user", "name", name="uq_servers_user"),
        )
    # Plain ALTER TABLE, never batch mode: rebuilding `sessions` on SQLite
    # (foreign keys on) would cascade-delete every grant, rule and event.
    if "hosting_state" not in _columns("sessions"):
        op.add_column("sessions", sa.Column(
            "hosting_state", sa.String(16), nullable=False, server_default="waiting"))
        op.add_column("sessions", sa.Column(
            "hosting_message", sa.Text(), nullable=False, server_default=""))
        # Sessions made before hosting existed were never shared by the
        # service: ended ones stay stopped, active ones wait for their
        # server to announce the extension before anyone is let in.
        op.execute("UPDATE sessions SET hosting_state = 'stopped' WHERE state = 'ended'")
    if "ix_sessions_server" not in _indexes("sessions"):
        op.create_index("ix_sessions_server", "sessions", ["server_user", "server_name"])
    if "ix_hub_shares_server" not in _indexes("hub_shares"):
        op.create_index("ix_hub_shares_server", "hub_shares", ["server_user", "server_name"])


def downgrade() -> None:
    if "ix_hub_shares_server" in _indexes("hub_shares"):
        op.drop_index("ix_hub_shares_server", table_name="hub_shares")
    if "ix_sessions_server" in _indexes("sessions"):
        op.drop_index("ix_sessions_server", table_name="sessions")
    if "hosting_state" in _columns("sessions"):
        # SQLite >= 3.35 drops columns in place (see upgrade() for why not batch)
        op.drop_column("sessions", "hosting_message")
        op.drop_column("sessions", "hosting_state")
    if "servers" in _tables():
        op.drop_table("servers")
