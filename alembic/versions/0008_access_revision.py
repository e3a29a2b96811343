"""The access revision: one row the database's triggers move on every change a
decision reads, so the service can keep what it loaded and check one number.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa

from alembic import op
from hub_rtc.records.revision import REVISION_TABLE, create_triggers, drop_triggers

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if REVISION_TABLE in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        REVISION_TABLE,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{REVISION_TABLE}")),
    )
    create_triggers(op.get_bind())


def downgrade() -> None:
    drop_triggers(op.get_bind())
    op.drop_table(REVISION_TABLE)
