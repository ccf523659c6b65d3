"""sync_schedule.abandoned_runs: how many syncs in a row a worker began and never finished

A company whose sync kills its worker (an out-of-memory payload, a crash in a native
library) was taken up again by another worker at each claim's expiry, killing worker after
worker and the other companies' syncs running beside it. The count, kept until a run ends,
holds such a company back longer each time (`store.schedule.ABANDONED_HOLDS`).

Revision ID: 0016_schedule_abandoned_runs
Revises: 0015_request_newest_invitation
Create Date: 2026-12-05 19:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_schedule_abandoned_runs"
down_revision = "0015_request_newest_invitation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sync_schedule", sa.Column("abandoned_runs", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as 0010 does
    op.drop_column("sync_schedule", "abandoned_runs")
