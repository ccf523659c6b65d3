"""companies.rules: the settings the company's derived columns were last decided with

`customers.portal_visible` and the contacts' portal status and eligibility are decided when
rows are written, from the company's settings; a sync compares the settings with these and
re-derives the company's rows when they changed (`store.rule_settings`). NULL: not known (a
store from before this column), which the next sync treats as a change.

Revision ID: 0010_company_rule_settings
Revises: 0009_unread_allocation_index
Create Date: 2026-12-04 12:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_company_rule_settings"
down_revision = "0009_unread_allocation_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("companies", sa.Column("rules", sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would break the
    # portal views that read it
    op.drop_column("companies", "rules")
