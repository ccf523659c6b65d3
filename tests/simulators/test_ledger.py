"""Payments and credit notes of the simulator model: generated and mutated books stay consistent
(every open invoice's balance is its total minus the live allocations to it)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.simulators import mutations
from connectors.simulators.generator import generate_company, sample_company
from connectors.simulators.ledger import inconsistencies
from connectors.simulators.model import SimCompany

TODAY = date(2025, 6, 1)
AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
D = Decimal


def _make(kind: str) -> SimCompany:
    return generate_company(kind, seed=5, customers=60, invoices=800, today=TODAY)


def _open(company: SimCompany, *, paid: bool = False):
    return next(
        i
        for i in company.invoices.values()
        if i.status == "open" and i.type == "ACCREC" and company.customers[i.customer_id].is_customer
        and (i.balance < i.total if paid else i.balance == i.total)
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_generated_books_are_consistent_with_about_one_payment_per_paid_invoice(kind):
    company = _make(kind)
    paid = [i for i in company.invoices.values() if i.status == "open" and i.balance < i.total]
    live = [p for p in company.payments.values() if p.live and p.amount > 0]
    assert inconsistencies(company) == []
    assert 0.9 * len(paid) <= len(live) <= 1.3 * len(paid)
    assert any(c.allocations for c in company.credits.values())  # credits applied
    assert any(c.live and c.remaining > 0 for c in company.credits.values())  # and unapplied
    assert any(not p.live for p in company.payments.values())  # bounced, voided or deleted
    assert (
        generate_company(kind, seed=5, customers=60, invoices=800, today=TODAY).payments == company.payments
    )


def test_quickbooks_applies_credit_through_payments_some_of_them_money_free():
    company = _make("quickbooks")
    carriers = {a.via for c in company.credits.values() for a in c.allocations}
    assert None not in carriers
    assert any(company.payments[p].amount == 0 for p in carriers)  # TotalAmt 0: credit only
    assert any(p.unapplied > 0 for p in company.payments.values())  # overpaid


def test_xero_has_supplier_documents_to_filter_out():
    company = _make("xero")
    assert any(p.type == "ACCPAYPAYMENT" for p in company.payments.values())
    assert all(len(p.allocations) == 1 and p.unapplied == 0 for p in company.payments.values())


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_every_mutation_keeps_the_books_consistent(kind):
    company = _make(kind)
    invoice = _open(company)
    customer = invoice.customer_id
    mutations.pay(company, invoice.id, invoice.balance - D("10.00"), AT)  # partial pay
    mutations.pay(company, invoice.id, D("10.00"), AT + timedelta(minutes=1))  # paid in full
    assert invoice.balance == 0 and inconsistencies(company) == []
    mutations.refund(company, invoice.id, D("15.00"), AT + timedelta(minutes=2))  # reopens
    assert invoice.balance == D("15.00") and inconsistencies(company) == []
    credit = mutations.add_credit(
        company, customer, D("20.00"), AT + timedelta(minutes=3), apply_to={invoice.id: D("5.00")}
    )
    assert invoice.balance == D("10.00") and credit.remaining == D("15.00")
    payment = mutations.receive_payment(
        company, customer, {invoice.id: D("10.00")}, AT + timedelta(minutes=4)
    )
    mutations.void_payment(company, payment.id, AT + timedelta(minutes=5))
    assert invoice.balance == D("10.00") and inconsistencies(company) == []
    paid = _open(company, paid=True)
    owed = paid.balance
    victim = next(
        p for p in company.payments.values() if p.live and any(a.invoice_id == paid.id for a in p.allocations)
    )
    mutations.delete_payment(company, victim.id, AT + timedelta(minutes=6))
    assert paid.balance > owed and inconsistencies(company) == []
    mutations.void_credit(company, credit.id, AT + timedelta(minutes=7))
    assert invoice.balance == D("15.00") and credit.remaining == 0 and inconsistencies(company) == []
    assert invoice.updated_at == AT + timedelta(minutes=7)


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_voiding_a_credit_applied_twice_to_one_invoice_reopens_both_applications(kind):
    company = _make(kind)
    invoice = _open(company)
    credit = mutations.add_credit(
        company, invoice.customer_id, D("30.00"), AT, apply_to={invoice.id: D("10.00")}
    )
    mutations.apply_credit(company, credit.id, invoice.id, D("5.00"), AT + timedelta(minutes=1))
    mutations.void_credit(company, credit.id, AT + timedelta(minutes=2))
    assert invoice.balance == invoice.total and inconsistencies(company) == []


def test_a_quickbooks_refund_keeps_the_payment_that_applies_a_write_off():
    """Refunding all the money of a payment that also applies a journal entry's credit
    leaves the payment live: deleting it took the write-off back, not the balance."""
    company = _make("quickbooks")
    invoice = _open(company)
    payment = mutations.write_off(company, invoice.id, D("10.00"), AT, money=D("20.00"))
    mutations.refund(company, invoice.id, D("20.00"), AT + timedelta(minutes=1))
    assert payment.live and payment.amount == 0 and invoice.balance == invoice.total - D("10.00")
    assert inconsistencies(company) == []


def test_refund_of_a_credit_paid_quickbooks_invoice_gives_the_credit_back():
    company = _make("quickbooks")
    invoice = _open(company)
    credit = mutations.add_credit(
        company, invoice.customer_id, invoice.total, AT, apply_to={invoice.id: invoice.total}
    )
    assert invoice.balance == 0 and credit.remaining == 0
    carrier = company.payments[credit.allocations[0].via]
    mutations.refund(company, invoice.id, invoice.total, AT + timedelta(minutes=1))
    assert credit.remaining == invoice.total and carrier.status == "deleted"
    assert inconsistencies(company) == []


def test_a_xero_payment_is_never_edited_a_partial_refund_replaces_it():
    company = _make("xero")
    invoice = _open(company)
    first = mutations.receive_payment(company, invoice.customer_id, {invoice.id: invoice.total}, AT)
    mutations.refund(company, invoice.id, D("1.00"), AT + timedelta(minutes=1))
    replacement = list(company.payments.values())[-1]
    assert first.status == "deleted" and first.amount == invoice.total
    assert replacement.amount == invoice.total - D("1.00") and invoice.balance == D("1.00")
    with pytest.raises(ValueError):
        mutations.receive_payment(company, invoice.customer_id, {invoice.id: D("0.50")}, AT, amount=D("0.60"))


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_the_sample_company_shows_payments_and_credits(kind):
    company = sample_company(kind, today=TODAY)
    assert inconsistencies(company) == []
    assert company.payments and any(c.allocations for c in company.credits.values())
    assert any(c.live and not c.allocations for c in company.credits.values())
