"""sync_run_totals: what the runs pruned past `[store] keep_runs_days` added up to

`sync_runs` grew for ever (a fleet of 1,000 companies synced every 15 minutes adds ~96,000
rows a day) and `/metrics` counted every run ever stored at each scrape. Runs past the
retention are now deleted (`store.retention`), their counts and API calls added to this
table in the same transaction, so the counters `/metrics` exposes never go down. The index
on `finished_at` finds the runs past the retention without reading the rest.

Revision ID: 0018_sync_run_totals
Revises: 0017_quarantine_outstanding
Create Date: 2026-12-06 22:10:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0018_sync_run_totals"
down_revision = "0017_quarantine_outstanding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_run_totals",
        sa.Column("company_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("api_calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "status"),
    )
    op.create_index("ix_sync_runs_finished_at", "sync_runs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_sync_runs_finished_at", table_name="sync_runs")
    op.drop_table("sync_run_totals")
