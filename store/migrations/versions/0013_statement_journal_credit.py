"""portal_statement: credit applied from QuickBooks journal entries is a line of its own

A QuickBooks payment may apply a journal entry's credit to invoices (how many accountants
write off bad debt). Those allocations now have `source_kind = 'journal'`; the statement
shows them as credit lines (ref: the journal entry's id), so its closing balance still
equals the balance due, and the payment's own line shows only its money.

Revision ID: 0013_statement_journal_credit
Revises: 0012_ledger_planned_balance
Create Date: 2026-12-05 09:40:00
"""

from alembic import op

from store.history.views import create_views

revision = "0013_statement_journal_credit"
down_revision = "0012_ledger_planned_balance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_views(op.get_bind(), 2)


def downgrade() -> None:
    create_views(op.get_bind(), 1)
