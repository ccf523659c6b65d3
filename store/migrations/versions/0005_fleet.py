"""fleet: sync schedule, periodic jobs, workers, stored companies, shared pacing, sync_runs.worker

Revision ID: 0005_fleet
Revises: 0004_customer_health
Create Date: 2026-12-02 03:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.types

revision = "0005_fleet"
down_revision = "0004_customer_health"
branch_labels = None
depends_on = None


def _name(length: int | None = None) -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.AutoString(length=length) if length else sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "sync_schedule",
        sa.Column("company_id", _name(64), nullable=False),
        sa.Column("next_due_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("requested_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("request_reason", sa.Text(), nullable=True),
        sa.Column("claimed_by", _name(), nullable=True),
        sa.Column("claimed_until", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_worker", _name(), nullable=True),
        sa.Column("last_started_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_finished_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_status", _name(), nullable=True),
        sa.PrimaryKeyConstraint("company_id"),
    )
    op.create_index("ix_sync_schedule_due", "sync_schedule", ["next_due_at"])
    op.create_table(
        "fleet_jobs",
        sa.Column("name", _name(64), nullable=False),
        sa.Column("next_due_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("claimed_by", _name(), nullable=True),
        sa.Column("claimed_until", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_worker", _name(), nullable=True),
        sa.Column("last_run_at", store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "workers",
        sa.Column("worker", _name(255), nullable=False),
        sa.Column("host", _name(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("alive_until", store.types.UTCDateTime(), nullable=False),
        sa.Column("running", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("worker"),
    )
    op.create_table(
        "company_definitions",
        sa.Column("company_id", _name(64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("added_at", store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("company_id"),
    )
    op.create_table(
        "pacing",
        sa.Column("company_id", _name(64), nullable=False),
        sa.Column("sent", sa.Text(), nullable=False),
        sa.Column("in_flight", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("company_id"),
    )
    # A plain ADD COLUMN (no batch copy): SQLite supports it for a nullable column.
    op.add_column("sync_runs", sa.Column("worker", _name(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("worker")
    op.drop_table("pacing")
    op.drop_table("company_definitions")
    op.drop_table("workers")
    op.drop_table("fleet_jobs")
    op.drop_index("ix_sync_schedule_due", table_name="sync_schedule")
    op.drop_table("sync_schedule")
