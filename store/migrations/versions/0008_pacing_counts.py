"""pacing.counts: the provider's remaining-request count, shared by every process of a company

Revision ID: 0008_pacing_counts
Revises: 0007_sync_run_history_counts
Create Date: 2026-12-02 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_pacing_counts"
down_revision = "0007_sync_run_history_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON beside `sent` and `in_flight`; an existing row starts knowing no count.
    op.add_column("pacing", sa.Column("counts", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("pacing", schema=None) as batch_op:
        batch_op.drop_column("counts")
