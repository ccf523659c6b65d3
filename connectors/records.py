"""Normalized, frozen records that every connector yields.

These are the only shapes that cross the connector boundary: the sync engine and
`portal_rules` never see a vendor payload. One `to_customer(raw)` / `to_invoice(raw)`
per system (in that system's sub-package) is the only code that knows vendor field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from portal_rules.records import CreditRecord, PaymentRecord

Entity = Literal["customers", "invoices", "payments", "credits"]  # a pull's order


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    ref: str  # the accounting system's own id
    display_name: str
    active: bool  # QuickBooks Active; Xero ContactStatus == ACTIVE
    emails: tuple[str, ...]  # contacts' addresses, primary first, as the source spelled them
    updated_at: datetime | None = None  # timezone-aware UTC
    deleted: bool = False  # removed in the source (QuickBooks CDC status="Deleted")


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    ref: str
    customer_ref: str
    doc_number: str | None
    issue_date: date | None
    due_date: date | None
    currency: str
    total: Decimal
    balance: Decimal
    sent: bool  # the source's own sent signal (EmailSent / PrintComplete / SentToContact)
    voided: bool = False
    deleted: bool = False
    draft: bool = False  # Xero DRAFT or SUBMITTED: never visible
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A source record the connector could not normalize: reported, skipped, never fatal."""

    entity: Entity
    ref: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of normalized records plus the cursor to commit once the page is stored.

    `cursor` is an opaque JSON-able dict owned by the connector; the orchestrator persists
    it in the same transaction as the page's rows and hands it back on the next run.
    `full_sync_complete` is set on the last page of a full pull (`full=True`) so the
    orchestrator can reconcile deletions of records the source no longer returned.
    """

    entity: Entity
    customers: tuple[CustomerRecord, ...] = ()
    invoices: tuple[InvoiceRecord, ...] = ()
    payments: tuple[PaymentRecord, ...] = ()
    credits: tuple[CreditRecord, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()
    cursor: dict = field(default_factory=dict)
    api_calls: int = 0  # HTTP requests this page cost (for sync_runs and benchmarks)
    full_sync_complete: bool = False
