"""access_requests.newest_invitation_id: "issued since the request" by id, not by clock

A worker skipped a requested invitation when one of the contact was created at or after the
request's time; the two times come from different machines (the HTTP server's, the admin's),
so a server a few seconds ahead made the worker supersede the admin's fresh link again. A
request now records the newest invitation id there was; a higher id was issued since.
Requests still waiting get the newest id created by their time.

Revision ID: 0015_request_newest_invitation
Revises: 0014_requested_invitations
Create Date: 2026-12-05 17:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_request_newest_invitation"
down_revision = "0014_requested_invitations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("access_requests", sa.Column("newest_invitation_id", sa.Integer(), nullable=True))
    op.execute(
        """UPDATE access_requests SET newest_invitation_id = COALESCE(
               (SELECT MAX(i.id) FROM invitations i WHERE i.created_at <= access_requests.requested_at), 0)
           WHERE handled_at IS NULL"""
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as 0010 does
    op.drop_column("access_requests", "newest_invitation_id")
