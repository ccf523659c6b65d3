"""Sent-only visibility: which invoices the portal shows, counts and reminds about.

An invoice is visible when it is sent (by the accounting system, or by a local override
either way), live (not voided, deleted or a draft), and its customer is portal-visible.
"""

from __future__ import annotations

from portal_rules.types import InvoiceFacts

# The reasons `hidden_reason` gives, most fundamental first.
DELETED = "deleted"
VOIDED = "voided"
DRAFT = "draft"
UNSENT = "unsent"
INACTIVE_CUSTOMER = "inactive customer"


def is_sent(source_sent: bool, override: bool | None) -> bool:
    """The admin's mark-sent (True) / mark-unsent (False) wins over the source either way."""
    return source_sent if override is None else override


def is_live(voided: bool, deleted: bool, draft: bool) -> bool:
    return not (voided or deleted or draft)


def is_sent_and_live(invoice: InvoiceFacts) -> bool:
    """Visibility of the invoice itself, before its customer is considered.

    This is what the store keeps in `invoices.visible`; the views add the customer's.
    """
    return sent_and_live(
        invoice.source_sent, invoice.sent_override, invoice.voided, invoice.deleted, invoice.draft
    )


def sent_and_live(source_sent: bool, override: bool | None, voided: bool, deleted: bool, draft: bool) -> bool:
    """`is_sent_and_live` over the five facts it reads, for a writer storing a page of invoices.

    The same decision as `hidden_reason(..., customer_visible=True) is None`, without
    building an `InvoiceFacts` per row.
    """
    return is_live(voided, deleted, draft) and is_sent(source_sent, override)


def is_visible(invoice: InvoiceFacts, customer_visible: bool) -> bool:
    """Shown in the portal, counted in balances, eligible for reminders."""
    return hidden_reason(invoice, customer_visible) is None


def hidden_reason(invoice: InvoiceFacts, customer_visible: bool) -> str | None:
    """Why an invoice is hidden from the portal ("unsent", "voided", ...), or None if shown."""
    if invoice.deleted:
        return DELETED
    if invoice.voided:
        return VOIDED
    if invoice.draft:
        return DRAFT
    if not is_sent(invoice.source_sent, invoice.sent_override):
        return UNSENT
    if not customer_visible:
        return INACTIVE_CUSTOMER
    return None
