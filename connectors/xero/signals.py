"""What Xero's invoice and contact fields mean: sent, live/voided/deleted/draft, sales
invoice, active contact, erasure requested, customer.

The normalizers call these at the boundary, so the meaning of a Xero field is decided in
one place; `portal_rules` only sees the neutral facts.
"""

from __future__ import annotations

from dataclasses import dataclass

XERO_LIVE_STATUSES = frozenset({"AUTHORISED", "PAID"})
# Xero's documented invoice statuses (credit notes have the same); anything else is news to us.
XERO_INVOICE_STATUSES = frozenset({"DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED"})
XERO_PAYMENT_STATUSES = frozenset({"AUTHORISED", "DELETED"})
XERO_INACTIVE_CONTACT_STATUSES = frozenset({"ARCHIVED", "GDPRREQUEST"})


@dataclass(frozen=True, slots=True)
class LiveFlags:
    """The liveness flags of an `InvoiceRecord`."""

    voided: bool = False
    deleted: bool = False
    draft: bool = False


def xero_sent(sent_to_contact: bool | None) -> bool:
    """Xero omits `SentToContact` when it is false."""
    return sent_to_contact is True


def xero_flags(status: str | None) -> LiveFlags | None:
    """An invoice's or credit note's Status as liveness flags: live only when AUTHORISED or
    PAID; a missing Status counts as a draft (never shown). None for a status outside Xero's
    documented set: read as a draft it would hide an invoice without anyone being told, so
    the normalizer quarantines the record instead."""
    if status is None:
        return LiveFlags(draft=True)
    normalized = status.upper()
    if normalized not in XERO_INVOICE_STATUSES:
        return None
    if normalized in XERO_LIVE_STATUSES:
        return LiveFlags()
    if normalized == "VOIDED":
        return LiveFlags(voided=True)
    if normalized == "DELETED":
        return LiveFlags(deleted=True)
    return LiveFlags(draft=True)  # DRAFT, SUBMITTED


def xero_payment_deleted(status: str) -> bool | None:
    """A payment's Status: DELETED (also how Xero lists a voided payment) is not live,
    AUTHORISED is; None for any other status (the normalizer quarantines the payment)."""
    normalized = status.upper()
    if normalized not in XERO_PAYMENT_STATUSES:
        return None
    return normalized == "DELETED"


def xero_importable(invoice_type: str | None) -> bool:
    """Only sales invoices (`Type == "ACCREC"`, in any case, as statuses are read) are
    imported; bills (ACCPAY) are not."""
    return (invoice_type or "").upper() == "ACCREC"


def xero_contact_active(contact_status: str | None) -> bool:
    """Xero contacts are inactive when ARCHIVED or GDPRREQUEST (missing status: active)."""
    return (contact_status or "ACTIVE").upper() not in XERO_INACTIVE_CONTACT_STATUSES


def xero_erasure_requested(contact_status: str | None) -> bool:
    """GDPRREQUEST: the person asked for their personal data to be erased. Such a contact is
    never mailed, whatever the settings (`import_inactive_customers` imports it all the same)."""
    return (contact_status or "").upper() == "GDPRREQUEST"


def xero_is_customer(is_customer: bool | None, has_sales_invoice: bool) -> bool:
    """A Xero contact is a customer with an ACCREC invoice or `IsCustomer`; suppliers are not."""
    return bool(is_customer) or has_sales_invoice
