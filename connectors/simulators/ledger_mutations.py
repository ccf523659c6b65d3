"""Payments and credit notes changing between two syncs, keeping the books consistent.

After each helper every open invoice's balance is still its total minus the live
allocations to it (`ledger.inconsistencies` stays empty). Each stamps `updated_at = at` on
every record it changes (payment, credit note, invoices) and bumps `company.revision` once.
QuickBooks edits a payment in place and applies a credit through a `Payment` (TotalAmt 0
when no money moves); Xero never edits a payment: it deletes it and records a new one.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.simulators.ledger import SimAllocation, SimCredit, SimPayment, credit_lines
from connectors.simulators.model import SimCompany, SimInvoice

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def receive_payment(
    company: SimCompany,
    customer_id: str,
    applied: dict[str, Decimal],
    at: datetime,
    *,
    amount: Decimal | None = None,
    reference: str = "",
    paid_on: date | None = None,
) -> SimPayment:
    """Money received from `customer_id`, applied to invoices (`{invoice id: amount}`).

    `amount` above the applied sum leaves money unapplied (QuickBooks only: a Xero
    payment pays exactly one invoice, in full of its amount).
    """
    applied = {key: _cents(value) for key, value in applied.items()}
    received = _cents(amount) if amount is not None else sum(applied.values(), ZERO)
    if company.kind == "xero" and (len(applied) != 1 or received != sum(applied.values(), ZERO)):
        raise ValueError("a Xero payment pays exactly one invoice with all its amount")
    if received < sum(applied.values(), ZERO) or received <= 0:
        raise ValueError(f"payment {received} below what it applies")
    invoices = {key: _payable(company, key, value, customer_id) for key, value in applied.items()}
    day = paid_on or at.date()
    first = next(iter(invoices.values()), None)
    currency = first.currency if first is not None else company.customers[customer_id].currency
    allocations = [SimAllocation(key, value, day) for key, value in applied.items()]
    payment = SimPayment(
        new_id(company, "payment"), customer_id, day, currency, received, at, allocations, reference=reference
    )
    for key, invoice in invoices.items():
        invoice.balance -= applied[key]
        _stamp(invoice, at)
    company.payments[payment.id] = payment
    _done(company, payment, at)
    return payment


def write_off(
    company: SimCompany, invoice_id: str, amount: Decimal, at: datetime, *, money: Decimal = ZERO
) -> SimPayment:
    """QuickBooks: write `amount` of an invoice off with a journal entry's credit, applied by
    a payment that also brings `money` (TotalAmt; 0 when only the credit is applied)."""
    if company.kind != "quickbooks":
        raise ValueError("journal entries applied by payments are QuickBooks'")
    amount, money = _cents(amount), _cents(money)
    invoice = company.invoices[invoice_id]
    _payable(company, invoice_id, amount + money, invoice.customer_id)
    allocations = [SimAllocation(invoice_id, money, at.date())] if money > 0 else []
    payment = SimPayment(
        new_id(company, "payment"), invoice.customer_id, at.date(), invoice.currency, money, at, allocations
    )
    company.payments[payment.id] = payment
    payment.journals.append((new_id(company, "journal"), SimAllocation(invoice_id, amount, at.date())))
    invoice.balance -= amount + money
    _stamp(invoice, at)
    _done(company, payment, at)
    return payment


def unapply(company: SimCompany, invoice_id: str, amount: Decimal, at: datetime) -> SimInvoice:
    """Take `amount` back from what paid the invoice, newest first (a refund: it reopens).

    Payments give back first, then credit notes. Books built by hand without payments
    only see the balance grow.
    """
    invoice = company.invoices[invoice_id]
    left = _cents(amount)
    for payment in sorted(_paying(company, invoice_id), key=lambda p: (p.paid_on, p.id), reverse=True):
        left -= _take_from_payment(company, payment, invoice_id, left, at)
        if left == 0:
            break
    for credit in sorted(company.credits.values(), key=lambda c: c.issue_date, reverse=True):
        if left == 0 or not credit.live:
            continue
        left -= _take_from_credit(company, credit, invoice_id, left, at)
    invoice.balance += _cents(amount)
    _stamp(invoice, at)
    company.revision += 1
    return invoice


def add_credit(
    company: SimCompany,
    customer_id: str,
    total: Decimal,
    at: datetime,
    *,
    apply_to: dict[str, Decimal] | None = None,
    doc_number: str | None = None,
) -> SimCredit:
    """A credit note (Xero ACCRECCREDIT, QuickBooks CreditMemo), applied to invoices if asked."""
    customer = company.customers[customer_id]
    count = len(company.credits) + 1
    number = doc_number or (f"CN-{count:04d}" if company.kind == "xero" else f"C{1000 + count}")
    credit = SimCredit(
        new_id(company, "credit"), number, customer_id, at.date(), customer.currency, _cents(total), at
    )
    company.credits[credit.id] = credit
    for invoice_id, amount in (apply_to or {}).items():
        apply_credit(company, credit.id, invoice_id, amount, at)
    _done(company, credit, at)
    return credit


def apply_credit(
    company: SimCompany, credit_id: str, invoice_id: str, amount: Decimal, at: datetime
) -> SimCredit:
    """Apply part of a credit note to an invoice (QuickBooks: through a TotalAmt 0 payment)."""
    credit = company.credits[credit_id]
    amount = _cents(amount)
    if not credit.live or amount <= 0 or amount > credit.remaining:
        raise ValueError(f"credit {amount} outside (0, remaining {credit.remaining}]")
    invoice = _payable(company, invoice_id, amount, credit.customer_id)
    via = None
    if company.kind == "quickbooks":
        carrier = SimPayment(
            new_id(company, "payment"), credit.customer_id, at.date(), credit.currency, ZERO, at
        )
        company.payments[carrier.id] = carrier
        via = carrier.id
    credit.allocations.append(SimAllocation(invoice_id, amount, at.date(), via=via))
    invoice.balance -= amount
    _stamp(invoice, at)
    _done(company, credit, at)
    return credit


def void_payment(company: SimCompany, payment_id: str, at: datetime) -> SimPayment:
    """Void a payment: what it paid is owed again. QuickBooks keeps it with zero amounts;
    Xero has no voided payment: it is deleted."""
    return _cancel(company, payment_id, "voided" if company.kind == "quickbooks" else "deleted", at)


def delete_payment(company: SimCompany, payment_id: str, at: datetime) -> SimPayment:
    """Delete a payment (QuickBooks: then only CDC shows it, as status "Deleted")."""
    return _cancel(company, payment_id, "deleted", at)


def void_credit(company: SimCompany, credit_id: str, at: datetime) -> SimCredit:
    """Void a credit note: its applications are undone (QuickBooks also zeroes its total)."""
    credit = company.credits[credit_id]
    # amounts read before taking any: taking from one invoice empties its latest allocations
    # first, so a credit applied twice to it would see its other allocation already at 0
    for invoice_id, amount in [(a.invoice_id, a.amount) for a in credit.allocations]:
        _take_from_credit(company, credit, invoice_id, amount, at)
        _reopen(company, invoice_id, amount, at)
    credit.status = "voided"
    if company.kind == "quickbooks":
        credit.total = ZERO
    _done(company, credit, at)
    return credit


def new_id(company: SimCompany, entity: str) -> str:
    """QuickBooks: the next transaction number; Xero: a UUID derived from the company, so
    a replayed test creates the same ids."""
    if company.kind == "xero":
        count = len(company.payments) + len(company.credits)
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{company.id}/{entity}/{count}"))
    journals = (key for payment in company.payments.values() for key, _ in payment.journals)
    keys = (*company.invoices, *company.payments, *company.credits, *journals)
    return str(max((int(key) for key in keys if key.isdigit()), default=100) + 1)


def _cancel(company: SimCompany, payment_id: str, status: str, at: datetime) -> SimPayment:
    payment = company.payments.get(payment_id)
    if payment is None or not payment.live:
        raise KeyError(f"no live payment {payment_id!r} in company {company.id}")
    for allocation in [*payment.allocations, *(a for _, a in payment.journals)]:
        _reopen(company, allocation.invoice_id, allocation.amount, at)
    for credit, allocation in credit_lines(company.credits.values()).get(payment_id, []):
        credit.allocations.remove(allocation)  # the credit is available again
        _reopen(company, allocation.invoice_id, allocation.amount, at)
        _stamp(credit, at)
    payment.status = status
    _done(company, payment, at)
    return payment


def _take_from_payment(
    company: SimCompany, payment: SimPayment, invoice_id: str, wanted: Decimal, at: datetime
) -> Decimal:
    allocation = next(a for a in payment.allocations if a.invoice_id == invoice_id)
    taken = min(wanted, allocation.amount)
    if company.kind == "xero":  # a Xero payment cannot change: delete it, record the rest anew
        payment.status = "deleted"
        _stamp(payment, at)
        rest = allocation.amount - taken
        if rest > 0:
            kept = SimPayment(
                new_id(company, "payment"),
                payment.customer_id,
                payment.paid_on,
                payment.currency,
                rest,
                at,
                [SimAllocation(invoice_id, rest, allocation.on)],
                payment.reference,
            )
            company.payments[kept.id] = kept
        return taken
    allocation.amount -= taken
    payment.amount -= taken  # the money goes back to the customer
    if allocation.amount == 0:
        payment.allocations.remove(allocation)
    if (
        not payment.allocations
        and payment.amount == 0
        and not payment.journals  # it still applies a journal entry's credit
        and payment.id not in credit_lines(company.credits.values())
    ):
        payment.status = "deleted"
    _stamp(payment, at)
    return taken


def _take_from_credit(
    company: SimCompany, credit: SimCredit, invoice_id: str, wanted: Decimal, at: datetime
) -> Decimal:
    taken = ZERO
    for allocation in [a for a in reversed(credit.allocations) if a.invoice_id == invoice_id]:
        part = min(wanted - taken, allocation.amount)
        allocation.amount -= part
        taken += part
        if allocation.amount == 0:
            credit.allocations.remove(allocation)
            carrier = company.payments.get(allocation.via or "")
            if carrier is not None and carrier.live and carrier.amount == 0 and not carrier.allocations:
                carrier.status = "deleted"
        if allocation.via in company.payments:
            _stamp(company.payments[allocation.via], at)
        if taken == wanted:
            break
    if taken:
        _stamp(credit, at)
    return taken


def _paying(company: SimCompany, invoice_id: str) -> list[SimPayment]:
    return [
        p
        for p in company.payments.values()
        if p.live and any(a.invoice_id == invoice_id for a in p.allocations)
    ]


def _payable(company: SimCompany, invoice_id: str, amount: Decimal, customer_id: str) -> SimInvoice:
    invoice = company.invoices.get(invoice_id)
    if invoice is None or invoice.status in ("deleted", "voided"):
        raise KeyError(f"no live invoice {invoice_id!r} in company {company.id}")
    if invoice.customer_id != customer_id:
        raise ValueError(f"invoice {invoice_id} belongs to another customer")
    if amount <= 0 or amount > invoice.balance:
        raise ValueError(f"payment {amount} outside (0, balance {invoice.balance}]")
    return invoice


def _reopen(company: SimCompany, invoice_id: str, amount: Decimal, at: datetime) -> None:
    invoice = company.invoices.get(invoice_id)
    if invoice is not None and invoice.status == "open":
        invoice.balance += amount
        _stamp(invoice, at)


def _cents(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT)


def _stamp(record: Any, at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("mutation times must be timezone-aware (UTC)")
    record.updated_at = at


def _done(company: SimCompany, record: Any, at: datetime) -> None:
    _stamp(record, at)
    company.revision += 1
