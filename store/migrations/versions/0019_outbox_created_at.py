"""An index on outbox.created_at: the messages past `[store] keep_outbox_days`, oldest first

The outbox kept every invitation and reminder ever sent, rendered body and all, and `/metrics`
counted them at every scrape. Settled messages past the retention are now deleted
(`mailer.retention`); the index finds them without reading the messages still kept.

Revision ID: 0019_outbox_created_at
Revises: 0018_sync_run_totals
Create Date: 2026-12-07 00:00:00
"""

from alembic import op

revision = "0019_outbox_created_at"
down_revision = "0018_sync_run_totals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_created_at", table_name="outbox")
