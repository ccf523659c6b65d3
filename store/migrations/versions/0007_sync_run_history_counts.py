"""sync_runs counts the payments and credits a run wrote, beside customers and invoices

Revision ID: 0007_sync_run_history_counts
Revises: 0005_fleet
Create Date: 2026-12-02 06:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_sync_run_history_counts"
down_revision = "0005_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with a default: existing runs count 0 (they predate the counters).
    op.add_column("sync_runs", sa.Column("payments", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("sync_runs", sa.Column("credits", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("credits")
        batch_op.drop_column("payments")
