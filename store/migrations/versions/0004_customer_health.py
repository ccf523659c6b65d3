"""customer health: computed scores, admin overrides, the customer_health view

Revision ID: 0004_customer_health
Revises: 0003_account_history
"""

from alembic import op
import sqlalchemy as sa
import store.types

revision = "0004_customer_health"
down_revision = "0003_account_history"
branch_labels = None
depends_on = None

# Pinned here: a later change to the view gets a migration of its own.
_OVERRIDDEN = "o.customer_ref IS NOT NULL"
_OVERRIDE_REASONS = (
    "'set by ' || o.set_by || COALESCE(': ' || o.note, '') || ' (computed '"
    " || COALESCE(CAST(s.score AS TEXT), 'unknown') || ': ' || s.reasons || ')'"
)
CUSTOMER_HEALTH = f"""
    SELECT s.company_id, s.customer_ref,
           CASE WHEN {_OVERRIDDEN} THEN o.score ELSE s.score END AS score,
           CASE WHEN {_OVERRIDDEN} THEN o.band ELSE s.band END AS band,
           CASE WHEN {_OVERRIDDEN} THEN 'override' ELSE 'computed' END AS source,
           CASE WHEN {_OVERRIDDEN} THEN {_OVERRIDE_REASONS} ELSE s.reasons END AS reasons,
           CASE WHEN {_OVERRIDDEN} THEN o.set_at ELSE s.computed_at END AS computed_at
    FROM health_scores s
    LEFT JOIN health_overrides o ON o.company_id = s.company_id AND o.customer_ref = s.customer_ref"""


def upgrade() -> None:
    op.create_table(
        "health_scores",
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("customer_ref", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("band", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("computed_at", store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "customer_ref"),
    )
    op.create_table(
        "health_overrides",
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("customer_ref", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("set_at", store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "customer_ref"),
    )
    op.execute(f"CREATE VIEW customer_health AS {CUSTOMER_HEALTH}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS customer_health")
    op.drop_table("health_overrides")
    op.drop_table("health_scores")
