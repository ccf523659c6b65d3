"""Normalized, frozen records of the account history (payments, credits, allocations).

Stdlib only, at the bottom of the dependency graph, so connectors and the store share one
definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    """Money from a payment or a credit (the source) applied to one invoice."""

    source_kind: Literal["payment", "credit"]
    source_ref: str  # the payment's or credit note/memo's own id
    invoice_ref: str
    amount: Decimal
    allocated_on: date | None  # QuickBooks: the payment's TxnDate; Xero: the allocation's or payment's Date


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    ref: str
    customer_ref: str
    paid_on: date | None
    currency: str
    amount: Decimal  # money received (QuickBooks TotalAmt, Xero Amount)
    unapplied: Decimal  # QuickBooks UnappliedAmt, Xero 0
    reference: str | None  # PaymentRefNum / Reference
    credit_only: bool = False  # QuickBooks TotalAmt 0 that only applies credit: not a customer payment
    voided: bool = False
    deleted: bool = False
    updated_at: datetime | None = None
    allocations: tuple[AllocationRecord, ...] = ()  # owned by this payment (incl. credit applied through it)


@dataclass(frozen=True, slots=True)
class CreditRecord:
    ref: str
    customer_ref: str
    doc_number: str | None
    issue_date: date | None
    currency: str
    total: Decimal
    remaining: Decimal  # credit not yet applied
    voided: bool = False
    deleted: bool = False
    draft: bool = False  # Xero status other than AUTHORISED/PAID: never live
    updated_at: datetime | None = None
    allocations: tuple[AllocationRecord, ...] = ()  # owned by this credit (Xero CreditNotes.Allocations)
