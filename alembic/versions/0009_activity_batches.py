"""The activity batches shared servers have sent, by their ids: a batch sent again
(after a kill, or an answer that never arrived) is counted once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    if "activity_batches" in _tables():
        return
    op.create_table(
        "activity_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE",
                                name="fk_activity_batches_session_id_sessions"),
        sa.PrimaryKeyConstraint("id", name="pk_activity_batches"),
        sa.UniqueConstraint("session_id", "batch_id", name="uq_activity_batches_session_id"),
    )


def downgrade() -> None:
    if "activity_batches" in _tables():
        op.drop_table("activity_batches")
