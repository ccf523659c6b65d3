"""The neutral company model the simulators serve.

The generator builds a `SimCompany`; each simulator renders it in its own system's shape
(QuickBooks JSON, Xero JSON). Mutation helpers change it between two syncs and stamp
`updated_at` so incremental endpoints (CDC, If-Modified-Since) see the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from connectors.simulators.ledger import SimAllocation, SimCredit, SimPayment

__all__ = ["SimAllocation", "SimCompany", "SimCredit", "SimCustomer", "SimInvoice", "SimPayment"]


@dataclass
class SimCustomer:
    id: str  # the system's own id: QuickBooks "123", Xero a UUID string
    name: str
    active: bool  # QuickBooks Active; Xero ContactStatus ACTIVE (else ARCHIVED)
    emails: list[str]  # primary first; QuickBooks joins them into PrimaryEmailAddr
    updated_at: datetime  # timezone-aware UTC
    contact_persons: list[tuple[str, bool]] = field(default_factory=list)  # Xero (email, IncludeInEmails)
    is_customer: bool = True  # Xero IsCustomer
    is_supplier: bool = False  # Xero IsSupplier (suppliers with no ACCREC invoice are not customers)
    gdpr_request: bool = False  # Xero ContactStatus GDPRREQUEST
    currency: str = "USD"
    deleted: bool = False  # QuickBooks: only visible through CDC as status="Deleted"


@dataclass
class SimInvoice:
    id: str
    doc_number: str
    customer_id: str
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    balance: Decimal
    updated_at: datetime  # timezone-aware UTC
    email_sent: bool = False  # QuickBooks EmailStatus EmailSent / Xero SentToContact
    printed: bool = False  # QuickBooks PrintStatus PrintComplete
    # "open" (QuickBooks live; Xero AUTHORISED or PAID by balance), "draft", "submitted",
    # "voided", "deleted"
    status: str = "open"
    type: str = "ACCREC"  # Xero only: ACCREC (sales) or ACCPAY (bills)


@dataclass
class SimCompany:
    """One realm (QuickBooks) or tenant (Xero)."""

    id: str  # realm id or tenant id
    name: str
    customers: dict[str, SimCustomer] = field(default_factory=dict)
    invoices: dict[str, SimInvoice] = field(default_factory=dict)
    kind: str = "quickbooks"  # or "xero": mutations differ (void, new ids)
    # Bumped by every mutation helper (and `sim.touch()`): simulators rebuild their
    # pre-rendered pages when it changes instead of re-checking every record per request.
    revision: int = 0
    payments: dict[str, SimPayment] = field(default_factory=dict)  # see `ledger`
    credits: dict[str, SimCredit] = field(default_factory=dict)
