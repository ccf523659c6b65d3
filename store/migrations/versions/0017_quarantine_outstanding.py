"""quarantine.resolved_at: which quarantined records the books have not since given readably

The quarantine was a log nobody read back: `arsync status` did not say that a record could
not be read, and the record's stored row (an invoice's old balance, say) went on being
reminded of. A row is now resolved when a later page stores its record, or when a full pull
ends (its record was re-read, quarantined again in a newer row, or is gone); until then
`status` lists it and its invoice's (or customer's) reminders are held.

The rows kept before this revision are resolved where the store shows it: a newer row of the
same record, or the record stored by a later run (`seen_run`). A row without a ref cannot be
matched and is taken as resolved. They carry their `seen_at` as `resolved_at`.

Revision ID: 0017_quarantine_outstanding
Revises: 0016_schedule_abandoned_runs
Create Date: 2026-12-06 16:40:00
"""

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0017_quarantine_outstanding"
down_revision = "0016_schedule_abandoned_runs"
branch_labels = None
depends_on = None

OUTSTANDING = sa.text("resolved_at IS NULL")
ENTITY_TABLES = ("customers", "invoices", "payments", "credits")


def upgrade() -> None:
    op.add_column("quarantine", sa.Column("resolved_at", store.types.UTCDateTime(), nullable=True))
    op.execute(
        """UPDATE quarantine SET resolved_at = seen_at
           WHERE ref IS NULL OR EXISTS (
               SELECT 1 FROM quarantine AS later
               WHERE later.company_id = quarantine.company_id AND later.entity = quarantine.entity
                 AND later.ref = quarantine.ref AND later.id > quarantine.id)"""
    )
    for table in ENTITY_TABLES:
        op.execute(
            f"""UPDATE quarantine SET resolved_at = seen_at
                WHERE resolved_at IS NULL AND entity = '{table}' AND EXISTS (
                    SELECT 1 FROM {table} AS stored
                    WHERE stored.company_id = quarantine.company_id AND stored.ref = quarantine.ref
                      AND stored.seen_run > quarantine.run_id)"""
        )
    op.create_index(
        "ix_quarantine_outstanding",
        "quarantine",
        ["company_id", "entity", "ref"],
        sqlite_where=OUTSTANDING,
        postgresql_where=OUTSTANDING,
    )


def downgrade() -> None:
    op.drop_index("ix_quarantine_outstanding", table_name="quarantine")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as 0010 does
    op.drop_column("quarantine", "resolved_at")
