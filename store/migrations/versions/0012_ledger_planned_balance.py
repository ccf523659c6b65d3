"""reminder_ledger keeps the balance each reminder was planned with

A reminder held for the delivery window lists each invoice's balance as it was when it
was planned. The dispatcher compares it with the balance now (`mailer.withdraw`): one
paid in part meanwhile is planned again, so the email asks for what is owed on the day it
is sent. Rows from before this revision have none and are sent as they were rendered.

Revision ID: 0012_ledger_planned_balance
Revises: 0011_ledger_outbox_index
Create Date: 2026-12-04 22:20:00
"""

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0012_ledger_planned_balance"
down_revision = "0011_ledger_outbox_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reminder_ledger", sa.Column("balance", store.types.Money(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reminder_ledger", schema=None) as batch_op:
        batch_op.drop_column("balance")
