"""reminder_ledger: index its rows by the outbox message that carries them

The dispatcher takes back a waiting reminder whose invoices are no longer due
(`mailer.withdraw`): it reads each due reminder's ledger rows by `outbox_id`. Without an
index that join scanned the ledger once per message: 60 s for a backlog of 10,000.

Revision ID: 0011_ledger_outbox_index
Revises: 0010_company_rule_settings
Create Date: 2026-12-04 17:30:00
"""

from alembic import op

revision = "0011_ledger_outbox_index"
down_revision = "0010_company_rule_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reminder_ledger_outbox", "reminder_ledger", ["outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_reminder_ledger_outbox", table_name="reminder_ledger")
