"""The last authorized shape of whole notebooks, for sessions with a runner.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    if "notebook_baselines" in _tables():
        return
    op.create_table(
        "notebook_baselines",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("notebook", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE",
                                name="fk_notebook_baselines_session_id_sessions"),
        sa.PrimaryKeyConstraint("session_id", "path", name="pk_notebook_baselines"),
    )


def downgrade() -> None:
    if "notebook_baselines" in _tables():
        op.drop_table("notebook_baselines")
