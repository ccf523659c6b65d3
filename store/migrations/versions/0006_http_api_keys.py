"""portal API keys (arsync serve)

Revision ID: 0006_http_api_keys
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.types

revision = "0006_http_api_keys"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_company_id"), ["company_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_company_id"))
    op.drop_table("api_keys")
