"""The last authorized content of ruled cells, kept out of the shared server's reach.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    if "cell_baselines" in _tables():
        return
    op.create_table(
        "cell_baselines",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("cell_id", sa.String(255), nullable=False),
        sa.Column("cell", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("after", sa.String(255), nullable=True),
        sa.Column("present", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE",
                                name="fk_cell_baselines_session_id_sessions"),
        sa.PrimaryKeyConstraint("session_id", "path", "cell_id", name="pk_cell_baselines"),
    )


def downgrade() -> None:
    if "cell_baselines" in _tables():
        op.drop_table("cell_baselines")
