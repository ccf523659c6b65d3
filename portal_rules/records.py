"""The normalized records every connector yields, and the page that carries them.

These are the only shapes that cross the connector boundary: the sync engine, the store
and `portal_rules` never see a vendor payload. Each connector's normalizer is the only code
that knows its system's field names. Stdlib only, at the bottom of the dependency graph, so
connectors and the store share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

Entity = Literal["customers", "invoices", "payments", "credits"]  # a pull's order
ENTITIES: tuple[Entity, ...] = ("customers", "invoices", "payments", "credits")


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    ref: str  # the accounting system's own id
    display_name: str
    active: bool  # the connector's verdict (QuickBooks Active; Xero contact status)
    emails: tuple[str, ...]  # contacts' addresses, primary first, as the source spelled them
    updated_at: datetime | None = None  # timezone-aware UTC
    deleted: bool = False  # removed in the source


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
    source_sent: bool  # the source's own sent signal, as the connector read it
    voided: bool = False
    deleted: bool = False
    draft: bool = False  # not yet a live document in the source: never visible
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    """Money from a payment or a credit (the source) applied to one invoice."""

    # journal: credit from a QuickBooks journal entry a payment applied (arsync does not
    # sync journal entries; the allocation lives while the payment that listed it does)
    source_kind: Literal["payment", "credit", "journal"]
    source_ref: str  # the payment's, credit note/memo's or journal entry's own id
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
    draft: bool = False  # not yet approved at the source: never live
    updated_at: datetime | None = None
    allocations: tuple[AllocationRecord, ...] = ()  # owned by this credit (Xero CreditNotes.Allocations)


Record = CustomerRecord | InvoiceRecord | PaymentRecord | CreditRecord
RECORD_TYPES: dict[Entity, type] = {
    "customers": CustomerRecord,
    "invoices": InvoiceRecord,
    "payments": PaymentRecord,
    "credits": CreditRecord,
}


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A source record the connector could not normalize: reported, skipped, never fatal."""

    entity: Entity
    ref: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of normalized records of one entity, plus the cursor to commit with it.

    `records` are all of `entity`'s record type. `cursor` is an opaque JSON-able dict owned
    by the connector; the sync persists it in the same transaction as the page's rows and
    hands it back on the next run. `full_sync_complete` is set on the last page of a full
    pull (`full=True`) so deletions of records the source no longer returned are reconciled.
    `total` is how many records of `entity` the whole pull holds, when the API says so for
    free (a progress display shows it), and `read` how many of those this page holds, what
    became of them aside (Xero's bills, a deletion seen first, a quarantined record): the
    count `total` is reached by.
    """

    entity: Entity
    records: tuple[Record, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()
    cursor: dict = field(default_factory=dict)
    api_calls: int = 0  # HTTP requests this page cost (for sync_runs and benchmarks)
    full_sync_complete: bool = False
    total: int | None = None
    read: int | None = None
    # deletions made since then the source could not report (QuickBooks: a cursor older than
    # CDC's 30 days is read by LastUpdatedTime, which shows no deletion): until a full pull
    deletions_unseen_since: str | None = None

    def of(self, entity: Entity) -> tuple[Record, ...]:
        """The page's records if it is a page of `entity`, else none."""
        return self.records if self.entity == entity else ()
