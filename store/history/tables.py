"""Payments, credit notes/memos and their allocations to invoices (SPEC §9).

Keyed by (company_id, ref) like invoices; synced columns only (there is no local state
yet). An allocation is owned by the payment or credit whose record listed it: writing that
record replaces them. An allocation to an invoice not yet stored is kept; the views join it
once the invoice arrives.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import Money, UTCDateTime


def _money() -> Column:
    return Column(Money(), nullable=False)


def _when() -> Column:
    return Column(UTCDateTime(), nullable=True)


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("company_id", "ref"),
        Index("ix_payments_company_customer", "company_id", "customer_ref"),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    ref: str = Field(max_length=64)
    customer_ref: str = Field(max_length=64)
    paid_on: date | None = None
    currency: str = Field(default="USD", max_length=8)
    amount: Decimal = Field(sa_column=_money())  # money received
    unapplied: Decimal = Field(sa_column=_money())
    reference: str | None = None
    credit_only: bool = False  # only applies credit (QuickBooks TotalAmt 0): not a customer payment
    voided: bool = False
    deleted: bool = False
    source_updated_at: datetime | None = Field(default=None, sa_column=_when())
    synced_at: datetime | None = Field(default=None, sa_column=_when())
    seen_run: int | None = None  # the sync run that last read it (full-sync deletion reconciliation)


class Credit(SQLModel, table=True):
    __tablename__ = "credits"
    __table_args__ = (
        UniqueConstraint("company_id", "ref"),
        Index("ix_credits_company_customer", "company_id", "customer_ref"),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    ref: str = Field(max_length=64)
    customer_ref: str = Field(max_length=64)
    doc_number: str | None = None
    issue_date: date | None = None
    currency: str = Field(default="USD", max_length=8)
    total: Decimal = Field(sa_column=_money())
    remaining: Decimal = Field(sa_column=_money())  # credit not yet applied
    voided: bool = False
    deleted: bool = False
    draft: bool = False  # not yet approved at the source: never live
    source_updated_at: datetime | None = Field(default=None, sa_column=_when())
    synced_at: datetime | None = Field(default=None, sa_column=_when())
    seen_run: int | None = None


class Allocation(SQLModel, table=True):
    """Money from a payment or a credit (the source) applied to one invoice."""

    __tablename__ = "allocations"
    __table_args__ = (
        UniqueConstraint("company_id", "owner_kind", "owner_ref", "line"),
        # read by invoice (statements, the health tally) and by owner (the unique key), never by source
        Index("ix_allocations_company_invoice", "company_id", "invoice_ref"),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    owner_kind: str = Field(max_length=16)  # payment | credit: the record that listed it
    owner_ref: str = Field(max_length=64)
    line: int  # position in the owner's list
    source_kind: str = Field(max_length=16)  # payment | credit | journal: whose money it is
    source_ref: str = Field(max_length=64)
    invoice_ref: str = Field(max_length=64)
    amount: Decimal = Field(sa_column=_money())
    allocated_on: date | None = None


PAYMENTS = Payment.__table__
CREDITS = Credit.__table__
ALLOCATIONS = Allocation.__table__
