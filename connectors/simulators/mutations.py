"""Changes to a simulated company between two syncs, as a user of the ledger would make them.

Each helper stamps `updated_at = at` on what it changes (so CDC, LastUpdatedTime queries and
If-Modified-Since see it) and bumps `company.revision` (so the simulators re-render their
cached pages). Semantics follow each system: a QuickBooks void zeroes the amounts and keeps
the record; a Xero void only changes the status. Deleted records stay in the model with
status "deleted" (QuickBooks shows them only through CDC).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

from connectors.simulators import ledger_mutations
from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def _touch(company: SimCompany, record: SimCustomer | SimInvoice, at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("mutation times must be timezone-aware (UTC)")
    record.updated_at = at
    company.revision += 1


def _invoice(company: SimCompany, invoice_id: str) -> SimInvoice:
    invoice = company.invoices.get(invoice_id)
    if invoice is None or invoice.status == "deleted":
        raise KeyError(f"no live invoice {invoice_id!r} in company {company.id}")
    return invoice


def _customer(company: SimCompany, customer_id: str) -> SimCustomer:
    customer = company.customers.get(customer_id)
    if customer is None or customer.deleted:
        raise KeyError(f"no customer {customer_id!r} in company {company.id}")
    return customer


def pay(company: SimCompany, invoice_id: str, amount: Decimal, at: datetime) -> SimInvoice:
    """Receive a payment of `amount` (at most the balance) for one invoice: a new payment."""
    invoice = _invoice(company, invoice_id)
    ledger_mutations.receive_payment(company, invoice.customer_id, {invoice_id: amount}, at)
    return invoice


def refund(company: SimCompany, invoice_id: str, amount: Decimal, at: datetime) -> SimInvoice:
    """Refund part of what was paid: the payments (then credits) that paid it give it back,
    newest first, and the balance grows again (a paid invoice reopens)."""
    invoice = _invoice(company, invoice_id)
    amount = Decimal(amount).quantize(CENT)
    paid = invoice.total - invoice.balance
    if amount <= 0 or amount > paid:
        raise ValueError(f"refund {amount} outside (0, paid {paid}]")
    return ledger_mutations.unapply(company, invoice_id, amount, at)


# Payments and credit notes: see `ledger_mutations` (re-exported here, one import for tests).
receive_payment = ledger_mutations.receive_payment
add_credit = ledger_mutations.add_credit
apply_credit = ledger_mutations.apply_credit
void_payment = ledger_mutations.void_payment
delete_payment = ledger_mutations.delete_payment
void_credit = ledger_mutations.void_credit
write_off = ledger_mutations.write_off


def void(company: SimCompany, invoice_id: str, at: datetime) -> SimInvoice:
    """Void: nothing is owed. QuickBooks also zeroes TotalAmt; Xero keeps the total."""
    invoice = _invoice(company, invoice_id)
    invoice.status, invoice.balance = "voided", ZERO
    if company.kind == "quickbooks":
        invoice.total = ZERO
    _touch(company, invoice, at)
    return invoice


def delete(company: SimCompany, invoice_id: str, at: datetime) -> SimInvoice:
    """Delete an invoice (QuickBooks: then visible only in CDC as status "Deleted")."""
    invoice = _invoice(company, invoice_id)
    invoice.status = "deleted"
    _touch(company, invoice, at)
    return invoice


def deactivate_customer(company: SimCompany, customer_id: str, at: datetime) -> SimCustomer:
    """QuickBooks Active=false / Xero ContactStatus ARCHIVED."""
    return _set_active(company, customer_id, False, at)


def reactivate_customer(company: SimCompany, customer_id: str, at: datetime) -> SimCustomer:
    return _set_active(company, customer_id, True, at)


def _set_active(company: SimCompany, customer_id: str, active: bool, at: datetime) -> SimCustomer:
    customer = _customer(company, customer_id)
    customer.active = active
    _touch(company, customer, at)
    return customer


def delete_customer(company: SimCompany, customer_id: str, at: datetime) -> SimCustomer:
    """Remove a customer entirely (QuickBooks CDC then reports it as status "Deleted")."""
    customer = _customer(company, customer_id)
    customer.deleted, customer.active = True, False
    _touch(company, customer, at)
    return customer


def mark_sent(company: SimCompany, invoice_id: str, at: datetime) -> SimInvoice:
    """The invoice was emailed (QuickBooks EmailStatus EmailSent / Xero SentToContact)."""
    invoice = _invoice(company, invoice_id)
    invoice.email_sent = True
    if invoice.status in ("draft", "submitted"):
        invoice.status = "open"  # Xero approves an invoice when it is sent
    _touch(company, invoice, at)
    return invoice


def edit_invoice(
    company: SimCompany,
    invoice_id: str,
    at: datetime,
    *,
    customer_id: str | None = None,
    total: Decimal | None = None,
    due_date: date | None = None,
) -> SimInvoice:
    """Edit an invoice nothing was paid on yet: bill another customer, change its lines (the
    total, and the balance with it) or its due date."""
    invoice = _invoice(company, invoice_id)
    if invoice.balance != invoice.total:
        raise ValueError(f"invoice {invoice_id} was paid on: its amounts and customer are fixed")
    if customer_id is not None:
        customer = _customer(company, customer_id)
        invoice.customer_id, invoice.currency = customer.id, customer.currency
    if total is not None:
        invoice.total = invoice.balance = Decimal(total).quantize(CENT)
    if due_date is not None:
        invoice.due_date = due_date
    _touch(company, invoice, at)
    return invoice


def rename_customer(company: SimCompany, customer_id: str, name: str, at: datetime) -> SimCustomer:
    customer = _customer(company, customer_id)
    customer.name = name
    _touch(company, customer, at)
    return customer


def set_emails(company: SimCompany, customer_id: str, emails: list[str], at: datetime) -> SimCustomer:
    """Replace a customer's addresses (primary first)."""
    customer = _customer(company, customer_id)
    customer.emails = list(emails)
    _touch(company, customer, at)
    return customer


def add_customer(
    company: SimCompany, name: str, emails: list[str], at: datetime, *, currency: str = "USD"
) -> SimCustomer:
    """A new active customer with the system's next id."""
    customer = SimCustomer(
        _next_id(company, "customer", company.customers), name, True, list(emails), at, currency=currency
    )
    company.customers[customer.id] = customer
    _touch(company, customer, at)
    return customer


def add_invoice(
    company: SimCompany,
    customer_id: str,
    total: Decimal,
    at: datetime,
    *,
    issue_date: date | None = None,
    terms_days: int = 30,
    email_sent: bool = False,
    status: str = "open",
    doc_number: str | None = None,
) -> SimInvoice:
    """A new invoice for `customer_id`, issued on `issue_date` (default: the day of `at`)."""
    customer = _customer(company, customer_id)
    issued = issue_date or at.date()
    total = Decimal(total).quantize(CENT)
    number = doc_number or str(1001 + len(company.invoices))
    invoice = SimInvoice(
        id=_next_id(company, "invoice", company.invoices),
        doc_number=("INV-" + number) if company.kind == "xero" and not doc_number else number,
        customer_id=customer.id,
        issue_date=issued,
        due_date=issued + timedelta(days=terms_days),
        currency=customer.currency,
        total=total,
        balance=total,
        updated_at=at,
        email_sent=email_sent,
        status=status,
    )
    company.invoices[invoice.id] = invoice
    _touch(company, invoice, at)
    return invoice


def _next_id(company: SimCompany, entity: str, existing: dict[str, object]) -> str:
    """QuickBooks: max id + 1, transactions (invoices with payments and credit memos) in one
    sequence, customers in another. Xero: a UUID derived from the company, entity and count,
    so a replayed test creates the same ids."""
    if company.kind == "xero":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{company.id}/{entity}/{len(existing)}"))
    if entity == "invoice":
        return ledger_mutations.new_id(company, entity)
    return str(max((int(key) for key in existing if key.isdigit()), default=0) + 1)
