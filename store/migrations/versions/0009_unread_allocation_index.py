"""allocations: drop ix_allocations_company_source, an index no query reads

Allocations are read by their invoice (statements, the health tally) and by their owner
(a payment or credit replacing its lines), never by their source. The index cost one more
B-tree insertion per allocation: about 5 % of a 100k-invoice full sync's CPU.

Revision ID: 0009_unread_allocation_index
Revises: 0008_pacing_counts
Create Date: 2026-12-04 07:30:00
"""

from alembic import op

revision = "0009_unread_allocation_index"
down_revision = "0008_pacing_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_allocations_company_source", table_name="allocations")


def downgrade() -> None:
    op.create_index(
        "ix_allocations_company_source", "allocations", ["company_id", "source_kind", "source_ref"]
    )
