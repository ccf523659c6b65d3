"""Random changes to a simulated company, as its users would make them between two syncs.

`random_change(company, rng, at)` applies one change drawn from everything the simulators'
mutation helpers support (payments, refunds, credit notes, voids, deletions, customers
coming and going, invoices sent or added, addresses changed) and says what it did. The
books stay consistent: every open invoice's balance is its total minus what paid it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from connectors.simulators import mutations
from connectors.simulators.ledger import SimCredit, SimPayment, live_allocations
from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice

CENT = Decimal("0.01")
Change = Callable[[SimCompany, random.Random, datetime], str | None]  # None: nothing to change


def random_change(company: SimCompany, rng: random.Random, at: datetime) -> str:
    """Apply one applicable change, drawn with the weights below; describe it."""
    kinds = [k for k in CHANGES if company.kind in k[2]]
    while True:
        name, change, _, _ = rng.choices(kinds, weights=[k[3] for k in kinds])[0]
        done = change(company, rng, at)
        if done is not None:
            return f"{name} {done}"


def _amount(rng: random.Random, most: Decimal) -> Decimal:
    """A whole number of cents in (0, most], the whole of it one time in three."""
    if most <= CENT or rng.random() < 0.33:
        return most
    return (most * Decimal(rng.randrange(5, 96)) / 100).quantize(CENT) or CENT


def _open(company: SimCompany, *, owing: bool = True) -> list[SimInvoice]:
    return [
        i
        for i in company.invoices.values()
        if i.status == "open" and i.type == "ACCREC" and (i.balance > 0 or not owing)
        and not company.customers[i.customer_id].deleted
    ]  # fmt: skip


def _paid_by(company: SimCompany) -> dict[str, Decimal]:
    """Invoice id -> what live payments and credit notes (not journal entries) paid of it."""
    paid: dict[str, Decimal] = {}
    for kind, allocation in live_allocations(company):
        if kind != "journal":
            paid[allocation.invoice_id] = paid.get(allocation.invoice_id, Decimal(0)) + allocation.amount
    return paid


def _customers(company: SimCompany, predicate: Callable[[SimCustomer], bool]) -> list[SimCustomer]:
    return [c for c in company.customers.values() if not c.deleted and predicate(c)]


def pay(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    invoices = _open(company)
    if not invoices:
        return None
    invoice = rng.choice(invoices)
    applied = {invoice.id: _amount(rng, invoice.balance)}
    others = [i for i in invoices if i.customer_id == invoice.customer_id and i.id != invoice.id]
    extra = None
    if company.kind == "quickbooks" and others and rng.random() < 0.3:
        other = rng.choice(others)  # one cheque for two invoices
        applied[other.id] = _amount(rng, other.balance)
    if company.kind == "quickbooks" and rng.random() < 0.15:
        extra = sum(applied.values()) + Decimal(rng.randrange(1, 5000)) / 100  # overpaid
    payment = mutations.receive_payment(
        company, invoice.customer_id, applied, at, amount=extra, reference=f"R{rng.randrange(1000)}",
        paid_on=at.date() - timedelta(days=rng.randrange(0, 20)),
    )  # fmt: skip
    return f"{payment.id} {applied} amount {payment.amount}"


def refund(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    paid = _paid_by(company)
    invoices = [i for i in _open(company, owing=False) if paid.get(i.id, 0) > 0]
    if not invoices:
        return None
    invoice = rng.choice(invoices)
    amount = _amount(rng, min(paid[invoice.id], invoice.total - invoice.balance))
    mutations.refund(company, invoice.id, amount, at)
    return f"{invoice.id} {amount}"


def _unpaid(company: SimCompany) -> list[SimInvoice]:
    """Invoices nothing was allocated to (QuickBooks and Xero would unlink or refuse the rest)."""
    touched = {a.invoice_id for _, a in live_allocations(company)}
    return [
        i for i in company.invoices.values() if i.status not in ("voided", "deleted") and i.id not in touched
    ]


def void_invoice(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    invoices = _unpaid(company)
    return mutations.void(company, rng.choice(invoices).id, at).id if invoices else None


def delete_invoice(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    invoices = _unpaid(company)
    return mutations.delete(company, rng.choice(invoices).id, at).id if invoices else None


def _live_payments(company: SimCompany) -> list[SimPayment]:
    return [p for p in company.payments.values() if p.live and p.type == "ACCRECPAYMENT"]


def void_payment(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    payments = _live_payments(company)
    return mutations.void_payment(company, rng.choice(payments).id, at).id if payments else None


def delete_payment(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    payments = _live_payments(company)
    return mutations.delete_payment(company, rng.choice(payments).id, at).id if payments else None


def add_credit(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    customers = _customers(company, lambda c: c.is_customer)
    if not customers:
        return None
    customer = rng.choice(customers)
    total = Decimal(rng.randrange(100, 50000)) / 100
    owing = [i for i in _open(company) if i.customer_id == customer.id]
    apply_to = {}
    if owing and rng.random() < 0.6:
        invoice = rng.choice(owing)
        apply_to[invoice.id] = min(_amount(rng, total), invoice.balance)
    credit = mutations.add_credit(company, customer.id, total, at, apply_to=apply_to)
    return f"{credit.id} {total} to {apply_to}"


def _credits(company: SimCompany, predicate: Callable[[SimCredit], bool]) -> list[SimCredit]:
    return [c for c in company.credits.values() if c.live and c.type == "ACCRECCREDIT" and predicate(c)]


def apply_credit(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    owing = _open(company)
    pairs = [
        (c, i) for c in _credits(company, lambda c: c.remaining > 0) for i in owing
        if i.customer_id == c.customer_id and i.currency == c.currency
    ]  # fmt: skip
    if not pairs:
        return None
    credit, invoice = rng.choice(pairs)
    amount = _amount(rng, min(credit.remaining, invoice.balance))
    mutations.apply_credit(company, credit.id, invoice.id, amount, at)
    return f"{credit.id} {amount} to {invoice.id}"


def void_credit(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    credits = _credits(company, lambda c: True)
    return mutations.void_credit(company, rng.choice(credits).id, at).id if credits else None


def write_off(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    invoices = _open(company)
    if not invoices:
        return None
    invoice = rng.choice(invoices)
    amount = _amount(rng, invoice.balance)
    money = _amount(rng, invoice.balance - amount) if invoice.balance > amount and rng.random() < 0.5 else 0
    payment = mutations.write_off(company, invoice.id, amount, at, money=Decimal(money))
    return f"{invoice.id} {amount} + money {money} by {payment.id}"


def deactivate(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    customers = _customers(company, lambda c: c.active)
    return mutations.deactivate_customer(company, rng.choice(customers).id, at).id if customers else None


def reactivate(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    customers = _customers(company, lambda c: not c.active)
    return mutations.reactivate_customer(company, rng.choice(customers).id, at).id if customers else None


def delete_customer(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    customers = _customers(company, lambda c: True)
    return mutations.delete_customer(company, rng.choice(customers).id, at).id if customers else None


def mark_sent(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    unsent = [
        i for i in company.invoices.values()
        if i.status in ("open", "draft", "submitted") and not i.email_sent and i.type == "ACCREC"
    ]  # fmt: skip
    return mutations.mark_sent(company, rng.choice(unsent).id, at).id if unsent else None


def add_customer(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    number = len(company.customers) + 1
    customer = mutations.add_customer(company, f"New Customer {number}", [f"ap{number}@new.example"], at)
    return customer.id


def add_invoice(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    customers = _customers(company, lambda c: c.is_customer)
    if not customers:
        return None
    customer = rng.choice(customers)
    status = rng.choice(("draft", "submitted")) if company.kind == "xero" and rng.random() < 0.2 else "open"
    invoice = mutations.add_invoice(
        company, customer.id, Decimal(rng.randrange(100, 500000)) / 100, at, status=status,
        issue_date=at.date() - timedelta(days=rng.randrange(0, 90)), email_sent=rng.random() < 0.7,
    )  # fmt: skip
    return f"{invoice.id} for {customer.id} {invoice.total} {status} sent={invoice.email_sent}"


def bill_a_supplier(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    """Xero: a sales invoice to a contact that was only a supplier makes it a customer."""
    suppliers = _customers(company, lambda c: not c.is_customer and not c.gdpr_request)
    if not suppliers:
        return None
    supplier = rng.choice(suppliers)
    invoice = mutations.add_invoice(company, supplier.id, Decimal("123.45"), at, email_sent=True)
    return f"{invoice.id} for {supplier.id}"


def edit_invoice(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    paid = _paid_by(company)
    invoices = [i for i in _open(company) if i.balance == i.total and i.id not in paid]
    customers = _customers(company, lambda c: c.is_customer)
    if not invoices:
        return None
    invoice = rng.choice(invoices)
    # Not away from a Xero contact that is a customer only by this invoice: whether it then
    # stays one is open (SPEC 2 says no sales invoice, no customer; Xero keeps IsCustomer)
    movable = company.customers[invoice.customer_id].is_customer
    customer = rng.choice(customers).id if movable and rng.random() < 0.4 else None
    total = Decimal(rng.randrange(100, 500000)) / 100 if rng.random() < 0.5 else None
    due = invoice.due_date + timedelta(days=rng.randrange(-20, 40)) if rng.random() < 0.5 else None
    mutations.edit_invoice(company, invoice.id, at, customer_id=customer, total=total, due_date=due)
    return f"{invoice.id} customer {customer} total {total} due {due}"


def rename(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    customers = _customers(company, lambda c: True)
    if not customers:
        return None
    customer = rng.choice(customers)
    return mutations.rename_customer(
        company, customer.id, f"{customer.name} & Søn {rng.randrange(99)}", at
    ).id


def set_emails(company: SimCompany, rng: random.Random, at: datetime) -> str | None:
    customers = _customers(company, lambda c: True)
    if not customers:
        return None
    customer = rng.choice(customers)
    emails = rng.choice(([], [f"new{rng.randrange(99)}@x.example"], ["a@x.example", "b@x.example"]))
    return mutations.set_emails(company, customer.id, emails, at).id


BOTH, QBO = ("quickbooks", "xero"), ("quickbooks",)
# name, change, systems, weight
CHANGES: list[tuple[str, Change, tuple[str, ...], float]] = [
    ("pay", pay, BOTH, 6),
    ("refund", refund, BOTH, 2),
    ("void invoice", void_invoice, BOTH, 1),
    ("delete invoice", delete_invoice, BOTH, 1),
    ("void payment", void_payment, BOTH, 1.5),
    ("delete payment", delete_payment, BOTH, 1.5),
    ("add credit", add_credit, BOTH, 2),
    ("apply credit", apply_credit, BOTH, 2),
    ("void credit", void_credit, BOTH, 1),
    ("write off", write_off, QBO, 1),
    ("deactivate", deactivate, BOTH, 1),
    ("reactivate", reactivate, BOTH, 1),
    ("delete customer", delete_customer, QBO, 1),
    ("mark sent", mark_sent, BOTH, 2),
    ("add customer", add_customer, BOTH, 0.5),
    ("add invoice", add_invoice, BOTH, 3),
    ("bill a supplier", bill_a_supplier, ("xero",), 0.3),
    ("set emails", set_emails, BOTH, 0.5),
    ("edit invoice", edit_invoice, BOTH, 1.5),
    ("rename", rename, BOTH, 0.5),
]
