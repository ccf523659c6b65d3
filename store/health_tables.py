"""Tables of customer health (SPEC section 10): computed scores and admin overrides.

Computed rows are replaced for the whole company by every recomputation; overrides are
local and never touched by a sync or a recomputation. The `customer_health` view joins
the two (an override wins; its SQL is pinned in migration 0004) and reads nothing else,
so later migrations of the synced tables never have to know about it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime


class HealthScore(SQLModel, table=True):
    """The computed score of each customer in the portal (score None: band `unknown`)."""

    __tablename__ = "health_scores"
    company_id: str = Field(primary_key=True, max_length=64)
    customer_ref: str = Field(primary_key=True, max_length=64)
    score: int | None = None
    band: str = Field(max_length=16)
    reasons: str = Field(sa_column=Column(Text, nullable=False))
    computed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class HealthOverride(SQLModel, table=True):
    """A score an admin set (`arsync customer set-health`): kept until cleared."""

    __tablename__ = "health_overrides"
    company_id: str = Field(primary_key=True, max_length=64)
    customer_ref: str = Field(primary_key=True, max_length=64)
    score: int
    band: str = Field(max_length=16)
    note: str | None = Field(default=None, sa_column=Column(Text))
    set_by: str = Field(max_length=128)
    set_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
