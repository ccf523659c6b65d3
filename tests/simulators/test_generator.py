"""The deterministic company generator, the sample preset, and the mutation helpers."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.simulators import mutations
from connectors.simulators.generator import (
    INVALID_EMAILS,
    SHARED_EMAILS,
    generate_company,
    sample_company,
)
from connectors.simulators.model import SimCompany

TODAY = date(2025, 6, 2)
AT = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def _make(kind: str, seed: int = 5) -> SimCompany:
    return generate_company(kind, seed=seed, customers=400, invoices=3000, today=TODAY)


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_same_seed_same_company_other_seed_other_company(kind):
    assert _make(kind) == _make(kind)
    assert _make(kind, seed=6) != _make(kind)


def test_ids_follow_each_system():
    qbo, xero = _make("quickbooks"), _make("xero")
    customer_ids = [int(i) for i in qbo.customers]
    assert customer_ids == list(range(1, len(customer_ids) + 1))
    assert all(key.isdigit() for key in qbo.invoices) and qbo.id.isdigit()
    assert all(uuid.UUID(key).version == 4 for key in [*xero.customers, *xero.invoices, xero.id])


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_the_mix_covers_every_case(kind):
    company = _make(kind)
    customers, invoices = list(company.customers.values()), list(company.invoices.values())
    emails = [email for c in customers for email in c.emails]
    assert 0.02 < sum(not c.active for c in customers) / len(customers) < 0.10
    assert any(not c.emails for c in customers)
    assert any(email in SHARED_EMAILS for email in emails)
    assert Counter(e for e in emails if e in SHARED_EMAILS).most_common(1)[0][1] > 1
    assert any(email in INVALID_EMAILS for email in emails)
    assert any(not c.name.isascii() for c in customers)
    assert len({c.name for c in customers}) == len(customers)  # names are unique
    statuses = Counter(i.status for i in invoices)
    assert statuses["open"] and statuses["voided"] and statuses["deleted"]
    open_ = [i for i in invoices if i.status == "open"]
    assert any(i.balance == 0 for i in open_) and any(0 < i.balance < i.total for i in open_)
    assert any(i.balance > 0 and i.due_date < TODAY for i in open_)  # past due
    assert any(i.email_sent for i in open_) and any(not i.email_sent for i in open_)
    assert any(i.printed and not i.email_sent for i in open_)
    assert len({i.currency for i in invoices}) > 1
    midnight = datetime.combine(TODAY, datetime.min.time(), UTC)
    stamps = [r.updated_at for r in [*customers, *invoices]]
    assert all(s.tzinfo is not None and s < midnight for s in stamps)
    assert all(i.total == i.total.quantize(Decimal("0.01")) for i in invoices)


def test_quickbooks_specifics():
    company = _make("quickbooks")
    assert any(len(c.emails) == 2 for c in company.customers.values())
    voided = [i for i in company.invoices.values() if i.status == "voided"]
    assert voided and all(i.total == i.balance == 0 for i in voided)
    assert {i.type for i in company.invoices.values()} == {"ACCREC"}


def test_xero_specifics():
    company = _make("xero")
    contacts = list(company.customers.values())
    includes = {flag for c in contacts for _, flag in c.contact_persons}
    assert includes == {True, False}
    suppliers_only = {c.id for c in contacts if c.is_supplier and not c.is_customer}
    assert suppliers_only and any(c.is_supplier and c.is_customer for c in contacts)
    assert any(c.gdpr_request for c in contacts)
    bills = [i for i in company.invoices.values() if i.type == "ACCPAY"]
    assert bills and all(company.customers[b.customer_id].is_supplier for b in bills)
    sold_to = {i.customer_id for i in company.invoices.values() if i.type == "ACCREC"}
    assert not sold_to & suppliers_only
    statuses = Counter(i.status for i in company.invoices.values())
    assert statuses["draft"] and statuses["submitted"]


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_sample_company_is_small_and_covers_the_cases(kind):
    company = sample_company(kind, today=TODAY)
    assert company == sample_company(kind, today=TODAY)
    assert (len(company.customers), len(company.invoices)) == (11, 30)
    names = {c.name for c in company.customers.values()}
    assert {"Café Müller GmbH", "Łódź Sp. z o.o.", "株式会社サンプル"} <= names
    assert any(not c.active for c in company.customers.values())
    statuses = {i.status for i in company.invoices.values()}
    assert {"open", "voided", "deleted"} <= statuses
    assert ({"draft", "submitted"} <= statuses) == (kind == "xero")


# -- mutations -----------------------------------------------------------------------------


def _open_invoice(company: SimCompany):
    return next(i for i in company.invoices.values() if i.status == "open" and i.balance == i.total)


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_pay_and_refund_reopen(kind):
    company = _make(kind)
    invoice = _open_invoice(company)
    revision = company.revision
    mutations.pay(company, invoice.id, invoice.balance, AT)
    assert invoice.balance == 0 and invoice.updated_at == AT
    mutations.refund(company, invoice.id, Decimal("10.00"), AT + timedelta(hours=1))
    assert invoice.balance == Decimal("10.00") and invoice.updated_at == AT + timedelta(hours=1)
    assert company.revision == revision + 2
    with pytest.raises(ValueError):
        mutations.pay(company, invoice.id, Decimal("10.01"), AT)
    with pytest.raises(ValueError):
        mutations.refund(company, invoice.id, invoice.total, AT)


def test_void_follows_each_system():
    qbo, xero = _make("quickbooks"), _make("xero")
    qbo_invoice, xero_invoice = _open_invoice(qbo), _open_invoice(xero)
    total = xero_invoice.total
    mutations.void(qbo, qbo_invoice.id, AT)
    mutations.void(xero, xero_invoice.id, AT)
    assert (qbo_invoice.status, qbo_invoice.total, qbo_invoice.balance) == ("voided", 0, 0)
    assert (xero_invoice.status, xero_invoice.total, xero_invoice.balance) == ("voided", total, 0)


def test_other_mutations_stamp_and_bump():
    company = _make("quickbooks")
    invoice = next(i for i in company.invoices.values() if i.status == "open" and not i.email_sent)
    customer = company.customers[invoice.customer_id]
    mutations.mark_sent(company, invoice.id, AT)
    mutations.rename_customer(company, customer.id, "New Name", AT)
    mutations.deactivate_customer(company, customer.id, AT)
    assert invoice.email_sent and customer.name == "New Name" and not customer.active
    mutations.delete(company, invoice.id, AT)
    assert invoice.status == "deleted"
    with pytest.raises(KeyError):
        mutations.pay(company, invoice.id, Decimal("1"), AT)
    with pytest.raises(ValueError):
        mutations.mark_sent(company, _open_invoice(company).id, datetime(2025, 6, 2))


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_added_records_get_the_next_id(kind):
    company = _make(kind)
    customer = mutations.add_customer(company, "Newco", ["ap@newco.example.com"], AT)
    invoice = mutations.add_invoice(company, customer.id, Decimal("99.5"), AT, email_sent=True)
    assert company.invoices[invoice.id] is invoice and invoice.total == Decimal("99.50")
    assert invoice.due_date == AT.date() + timedelta(days=30) and invoice.updated_at == AT
    if kind == "quickbooks":
        assert int(invoice.id) == max(int(key) for key in company.invoices)
        assert int(customer.id) == len(company.customers)
        # invoices, payments and credit memos share one sequence: no invoice takes a memo's id
        assert invoice.id not in company.payments and invoice.id not in company.credits
        assert int(invoice.id) > max(int(key) for key in [*company.payments, *company.credits])
    else:
        assert uuid.UUID(invoice.id) and invoice.id != customer.id


@pytest.mark.parametrize("kind", ["quickbooks", "xero"])
def test_an_unpaid_invoice_can_be_edited_a_paid_one_cannot(kind):
    company = _make(kind)
    invoice = next(i for i in company.invoices.values() if i.status == "open" and i.balance == i.total > 1)
    other = next(c for c in company.customers.values() if c.id != invoice.customer_id and c.is_customer)
    due = invoice.due_date + timedelta(days=10)
    revision = company.revision
    mutations.edit_invoice(company, invoice.id, AT, customer_id=other.id, total=Decimal("12.5"), due_date=due)
    assert (invoice.customer_id, invoice.currency) == (other.id, other.currency)
    assert (invoice.total, invoice.balance, invoice.due_date) == (Decimal("12.50"), Decimal("12.50"), due)
    assert invoice.updated_at == AT and company.revision > revision
    mutations.pay(company, invoice.id, Decimal("1.00"), AT)
    with pytest.raises(ValueError, match="paid on"):
        mutations.edit_invoice(company, invoice.id, AT, total=Decimal("20.00"))
