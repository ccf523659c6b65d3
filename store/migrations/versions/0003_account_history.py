"""account history: payments, credits, allocations and their portal views

Revision ID: 0003_account_history
Revises: 0006_http_api_keys
Create Date: 2026-12-02 03:00:00
"""

from alembic import op
import sqlalchemy as sa
import store.types
from store.history.views import create_views, drop_views


revision = "0003_account_history"
down_revision = "0006_http_api_keys"
branch_labels = None
depends_on = None


def _synced() -> list[sa.Column]:
    return [
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
    ]


def _tail() -> list[sa.Column]:
    return [
        sa.Column("source_updated_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("synced_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("seen_run", sa.Integer(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("customer_ref", sa.String(length=64), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", store.types.Money(), nullable=False),
        sa.Column("unapplied", store.types.Money(), nullable=False),
        sa.Column("reference", sa.String(), nullable=True),
        sa.Column("credit_only", sa.Boolean(), nullable=False),
        *_synced(),
        *_tail(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "ref"),
    )
    op.create_index("ix_payments_company_customer", "payments", ["company_id", "customer_ref"])
    op.create_table(
        "credits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("customer_ref", sa.String(length=64), nullable=False),
        sa.Column("doc_number", sa.String(), nullable=True),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("total", store.types.Money(), nullable=False),
        sa.Column("remaining", store.types.Money(), nullable=False),
        *_synced(),
        sa.Column("draft", sa.Boolean(), nullable=False),
        *_tail(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "ref"),
    )
    op.create_index("ix_credits_company_customer", "credits", ["company_id", "customer_ref"])
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_ref", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=False),
        sa.Column("invoice_ref", sa.String(length=64), nullable=False),
        sa.Column("amount", store.types.Money(), nullable=False),
        sa.Column("allocated_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "owner_kind", "owner_ref", "line"),
    )
    op.create_index("ix_allocations_company_invoice", "allocations", ["company_id", "invoice_ref"])
    op.create_index(
        "ix_allocations_company_source", "allocations", ["company_id", "source_kind", "source_ref"]
    )
    create_views(op.get_bind(), 1)


def downgrade() -> None:
    drop_views(op.get_bind(), 1)
    op.drop_table("allocations")
    op.drop_table("credits")
    op.drop_table("payments")
