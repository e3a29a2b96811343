"""Who is online in a session, and instructors who joined one read-only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _session_user_table(name: str, *extra: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        *extra,
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE",
                                name=f"fk_{name}_session_id_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=f"fk_{name}_user_id_users"),
        sa.PrimaryKeyConstraint("session_id", "user_id", name=f"pk_{name}"),
    )


def upgrade() -> None:
    if "presence" not in _tables():
        _session_user_table(
            "presence",
            sa.Column("rooms", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("seen_at", sa.DateTime(), nullable=False),
        )
    if "watchers" not in _tables():
        _session_user_table("watchers", sa.Column("joined_at", sa.DateTime(), nullable=False))


def downgrade() -> None:
    for name in ("watchers", "presence"):
        if name in _tables():
            op.drop_table(name)
