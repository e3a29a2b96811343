"""Whether each announced server can run session kernels in a sandbox, and there as an
account of their own.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("servers")}


def upgrade() -> None:
    if "kernel_sandbox" in _columns():
        return
    with op.batch_alter_table("servers") as batch:
        # NULL: the server did not say (an older extension)
        batch.add_column(sa.Column("kernel_sandbox", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("kernel_sandbox_missing", sa.String(300), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("kernel_account", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("kernel_account_missing", sa.String(300), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    if "kernel_sandbox" not in _columns():
        return
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("kernel_account_missing")
        batch.drop_column("kernel_account")
        batch.drop_column("kernel_sandbox_missing")
        batch.drop_column("kernel_sandbox")
