"""access_requests: the contact each request decided to invite, issued by the worker

`POST /request-access` answered after deciding, then issued the invitation in the same
process: the next request on that connection was slower after a customer's email than a
stranger's, which told them apart. The request now only records its decision (the same
writes whatever the email) and `arsync run` issues the invitation before its next mail
dispatch. Rows from before have nothing left to issue.

Revision ID: 0014_requested_invitations
Revises: 0013_statement_journal_credit
Create Date: 2026-12-05 09:50:00
"""

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0014_requested_invitations"
down_revision = "0013_statement_journal_credit"
branch_labels = None
depends_on = None

PENDING = sa.text("invite_ref IS NOT NULL AND handled_at IS NULL")


def upgrade() -> None:
    op.add_column("access_requests", sa.Column("invite_ref", sa.String(length=64), nullable=True))
    op.add_column("access_requests", sa.Column("handled_at", store.types.UTCDateTime(), nullable=True))
    op.create_index(
        "ix_access_requests_pending",
        "access_requests",
        ["company_id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_access_requests_pending", table_name="access_requests")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as 0010 does
    op.drop_column("access_requests", "handled_at")
    op.drop_column("access_requests", "invite_ref")
