"""What each accounting system's fields say about an invoice: sent, voided, deleted, draft.

The connectors call these at the boundary (`to_invoice(raw)`), so the meaning of a vendor
field is decided in one place and tested here, next to the visibility rules that use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

XERO_LIVE_STATUSES = frozenset({"AUTHORISED", "PAID"})


@dataclass(frozen=True, slots=True)
class LiveFlags:
    """The liveness flags of an `InvoiceFacts` / `InvoiceRecord`."""

    voided: bool = False
    deleted: bool = False
    draft: bool = False


def quickbooks_sent(email_status: str | None, print_status: str | None) -> bool:
    """Emailed (`EmailStatus == "EmailSent"`) or printed (`PrintStatus == "PrintComplete"`)."""
    return email_status == "EmailSent" or print_status == "PrintComplete"


def quickbooks_voided(private_note: str | None, total: Decimal, balance: Decimal) -> bool:
    """QuickBooks keeps a voided invoice with zero amounts and a note beginning "Voided".

    Both marks are required: a legitimate zero invoice, or a live one whose note merely
    starts with the word, stays live.
    """
    note = (private_note or "").lstrip().lower()
    return note.startswith("voided") and total == 0 and balance == 0


def quickbooks_deleted(cdc_status: str | None) -> bool:
    """Deletions arrive only through CDC, as an object with `status="Deleted"`."""
    return cdc_status == "Deleted"


def xero_sent(sent_to_contact: bool | None) -> bool:
    """Xero omits `SentToContact` when it is false."""
    return sent_to_contact is True


def xero_live(status: str | None) -> bool:
    """Xero invoices are live only when AUTHORISED or PAID."""
    return (status or "").upper() in XERO_LIVE_STATUSES


def xero_flags(status: str | None) -> LiveFlags:
    """Xero status as liveness flags; an unknown or missing status counts as a draft."""
    normalized = (status or "").upper()
    if normalized in XERO_LIVE_STATUSES:
        return LiveFlags()
    if normalized == "VOIDED":
        return LiveFlags(voided=True)
    if normalized == "DELETED":
        return LiveFlags(deleted=True)
    return LiveFlags(draft=True)  # DRAFT, SUBMITTED, or a status we do not know


def xero_importable(invoice_type: str | None) -> bool:
    """Only sales invoices (`Type == "ACCREC"`) are imported; bills (ACCPAY) are not."""
    return invoice_type == "ACCREC"
