"""Xero `Payments` and `CreditNotes` JSON -> our payment and credit records.

Only customer documents are imported: payments of `PaymentType` ACCRECPAYMENT and credit
notes of `Type` ACCRECCREDIT (supplier ones give None). A Xero payment pays one invoice,
always fully allocated (`unapplied` 0); its customer is the invoice's contact; `Status`
DELETED (also how a voided payment is listed) is not live. Credit notes are live in
AUTHORISED or PAID and carry their `Allocations`; deleted allocations are skipped. A status
outside Xero's documented set (and a payment without one) quarantines the record, as does
a negative amount: Xero never sends one (money going back is a refund, a document of its
own), and stored it would be shown as money the customer owes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.xero.normalize import (
    MalformedRecord,
    _mapping,
    _not_negative,
    _optional,
    _optional_text,
    _text,
    currency_code,
    live_flags,
    parse_date,
    parse_datetime,
)
from connectors.xero.signals import xero_payment_deleted
from portal_rules.records import AllocationRecord, CreditRecord, PaymentRecord

SALES_PAYMENTS = 'PaymentType=="ACCRECPAYMENT"'  # the `where` filters: supplier documents never
SALES_CREDITS = 'Type=="ACCRECCREDIT"'
_ZERO = Decimal("0.00")


def to_payment(raw: Any) -> PaymentRecord | None:
    """A Payment as a PaymentRecord, None for another kind of payment (a supplier's, a refund);
    raises MalformedRecord, also when it has no PaymentType (quarantined, not dropped unseen)."""
    payment = _mapping(raw, "Payment")
    kind = _optional_text(payment, "PaymentType")
    if not kind:
        raise MalformedRecord("missing PaymentType")
    if kind.upper() != "ACCRECPAYMENT":
        return None
    ref = _text(payment, "PaymentID")
    invoice = _mapping(payment.get("Invoice"), "Invoice")
    invoice_ref = _text(invoice, "InvoiceID", "Invoice.InvoiceID")
    contact = _mapping(invoice.get("Contact"), "Invoice.Contact")
    amount = _not_negative(payment, "Amount")
    paid_on = _optional(payment, "Date", parse_date)
    deleted = _payment_deleted(payment)
    return PaymentRecord(
        ref=ref,
        customer_ref=_text(contact, "ContactID", "Invoice.Contact.ContactID"),
        paid_on=paid_on,
        currency=currency_code(invoice, "CurrencyCode", "Invoice.CurrencyCode"),
        amount=amount,
        unapplied=_ZERO,
        reference=_optional_text(payment, "Reference") or None,
        deleted=deleted,
        updated_at=_optional(payment, "UpdatedDateUTC", parse_datetime),
        allocations=(AllocationRecord("payment", ref, invoice_ref, amount, paid_on),),
    )


def to_credit(raw: Any) -> CreditRecord | None:
    """A CreditNote as a CreditRecord with its allocations, None for a supplier credit
    (ACCPAYCREDIT); raises MalformedRecord, also for a missing or unknown Type."""
    credit = _mapping(raw, "CreditNote")
    kind = _optional_text(credit, "Type")
    if not kind:
        raise MalformedRecord("missing Type")
    if kind.upper() == "ACCPAYCREDIT":
        return None
    if kind.upper() != "ACCRECCREDIT":
        raise MalformedRecord(f"Type is neither ACCRECCREDIT nor ACCPAYCREDIT: {kind!r}")
    ref = _text(credit, "CreditNoteID")
    flags = live_flags(credit, "credit note")
    live = not (flags.voided or flags.deleted or flags.draft)
    total = _not_negative(credit, "Total")
    # Xero may leave RemainingCredit out of a draft or voided note: nothing is available then.
    remaining = (
        _not_negative(credit, "RemainingCredit")
        if live or credit.get("RemainingCredit") is not None
        else _ZERO
    )
    return CreditRecord(
        ref=ref,
        customer_ref=_text(_mapping(credit.get("Contact"), "Contact"), "ContactID", "Contact.ContactID"),
        doc_number=_optional_text(credit, "CreditNoteNumber") or None,
        issue_date=_optional(credit, "Date", parse_date),
        currency=currency_code(credit, "CurrencyCode"),
        total=total,
        remaining=remaining,
        voided=flags.voided,
        deleted=flags.deleted,
        draft=flags.draft,
        updated_at=_optional(credit, "UpdatedDateUTC", parse_datetime),
        allocations=_allocations(ref, credit.get("Allocations")),
    )


def _payment_deleted(payment: dict) -> bool:
    # Missing, it cannot be read safely either way: live would count money that may have been
    # deleted, deleted would hide money received. Xero always sends it, so it is quarantined.
    status = _optional_text(payment, "Status")
    if status is None:
        raise MalformedRecord("missing payment Status")
    deleted = xero_payment_deleted(status)
    if deleted is None:
        raise MalformedRecord(f"unknown payment Status {status!r}")
    return deleted


def _allocations(ref: str, raw: Any) -> tuple[AllocationRecord, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MalformedRecord("Allocations is not a list")
    allocations = []
    for item in raw:
        allocation = _mapping(item, "Allocation")
        if allocation.get("IsDeleted") is True:
            continue
        invoice = _mapping(allocation.get("Invoice"), "Allocation.Invoice")
        invoice_ref = _text(invoice, "InvoiceID", "Allocation.Invoice.InvoiceID")
        amount = _not_negative(allocation, "Amount")
        allocations.append(
            AllocationRecord("credit", ref, invoice_ref, amount, _optional(allocation, "Date", parse_date))
        )
    return tuple(allocations)
