"""Property: with consistent books, every customer's closing `running_balance` equals its
`portal_customers.balance_due`, on SQLite and PostgreSQL.

Books are consistent when each invoice's balance is its total minus the allocations that
count (owner and source live). Records go straight through the store's writers, in any
order (allocations may arrive before their invoices), then payments and credits are
voided, deleted or drafted and the invoices re-synced with their new balances.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from portal_rules.records import AllocationRecord, CreditRecord, PaymentRecord
from store import portal
from store.history.reads import settlements_in
from tests.history import books

DAY0 = date(2026, 1, 1)
CUSTOMERS = ["A", "B", "C"]
ZERO = Decimal(0)
cents = st.integers(min_value=1, max_value=500_000).map(lambda n: Decimal(n).scaleb(-2))
day = st.one_of(st.none(), st.integers(0, 40).map(lambda n: DAY0 + timedelta(days=n)))


@st.composite
def company(draw):
    n_invoices = draw(st.integers(1, 8))
    invoices = [
        books.invoice(
            f"I{i}", draw(st.sampled_from(CUSTOMERS)), "0", issued=draw(day),
            sent=draw(st.booleans()), voided=draw(st.integers(0, 5)) == 0,
        )
        for i in range(n_invoices)
    ]  # fmt: skip
    invoice_refs = st.sampled_from([f"I{i}" for i in range(n_invoices)] + ["MISSING"])
    invoices = [replace(i, total=draw(cents)) for i in invoices]
    credits = [
        CreditRecord(
            f"CN{i}", draw(st.sampled_from(CUSTOMERS)), f"CN-{i}", draw(day), "USD", Decimal(0), Decimal(0),
            draft=draw(st.integers(0, 5)) == 0, voided=draw(st.integers(0, 5)) == 0,
            allocations=tuple(
                AllocationRecord("credit", f"CN{i}", draw(invoice_refs), draw(cents), None)
                for _ in range(draw(st.integers(0, 2)))
            ),
        )
        for i in range(draw(st.integers(0, 3)))
    ]  # fmt: skip
    credit_refs = [c.ref for c in credits] + ["CN-MISSING"]
    payments = []
    for i in range(draw(st.integers(0, 6))):
        ref, credit_only = f"P{i}", draw(st.integers(0, 3)) == 0
        credit = st.sampled_from(credit_refs)
        allocations = tuple(
            AllocationRecord("credit", draw(credit), draw(invoice_refs), draw(cents), None)
            if credit_only or draw(st.booleans()) and credits
            else AllocationRecord("payment", ref, draw(invoice_refs), draw(cents), draw(day))
            for _ in range(draw(st.integers(1, 3)))
        )  # fmt: skip
        money = sum((a.amount for a in allocations if a.source_kind == "payment"), Decimal(0))
        payments.append(
            PaymentRecord(
                ref, draw(st.sampled_from(CUSTOMERS)), draw(day), "USD", money, Decimal(0), None,
                credit_only=credit_only, allocations=allocations, voided=draw(st.integers(0, 4)) == 0,
            )
        )  # fmt: skip
    order = draw(st.permutations(["invoices", "payments", "credits"]))
    changes = draw(
        st.lists(st.tuples(st.sampled_from(["void", "delete", "draft"]), st.integers(0, 9)), max_size=3)
    )
    return invoices, payments, credits, order, changes


def consistent(invoices, payments, credits):
    """The invoices with the balance their books imply: total minus the allocations that count."""
    stored = {("payment", p.ref): p for p in payments} | {("credit", c.ref): c for c in credits}

    def live(kind: str, ref: str) -> bool:
        record = stored.get((kind, ref))
        return record is not None and not (record.voided or record.deleted or getattr(record, "draft", False))

    applied: dict[str, Decimal] = {}
    for (kind, ref), owner in stored.items():
        for a in owner.allocations:
            if live(kind, ref) and live(a.source_kind, a.source_ref):
                applied[a.invoice_ref] = applied.get(a.invoice_ref, Decimal(0)) + a.amount
    return [replace(i, balance=i.total - applied.get(i.ref, Decimal(0))) for i in invoices]


def mutate(payments, credits, changes):
    for kind, index in changes:
        if kind in ("void", "delete") and payments:
            i = index % len(payments)
            payments[i] = replace(payments[i], **{"voided" if kind == "void" else "deleted": True})
        elif credits:
            i = index % len(credits)
            field = {"void": "voided", "delete": "deleted", "draft": "draft"}[kind]
            credits[i] = replace(credits[i], **{field: True})
    return payments, credits


def write(engine, cid, invoices, payments, credits, order):
    records = {"invoices": invoices, "payments": payments, "credits": credits}
    writers = {"invoices": books.invoices, "payments": books.payments, "credits": books.credits}
    for entity in order:
        writers[entity](engine, cid, records[entity])


def assert_closing_equals_balance_due(engine, cid):
    with engine.connect() as connection:
        due = dict(
            connection.execute(
                text("SELECT customer_ref, balance_due FROM portal_customers WHERE company_id = :c"),
                {"c": cid},
            ).all()
        )
    for ref in CUSTOMERS:
        statement = portal.statement(engine, cid, ref)
        closing = statement.lines[-1].running_balance if statement.lines else Decimal(0)
        assert statement.closing_balance == closing
        assert closing == portal.balances(engine, cid, ref, DAY0).balance_due
        assert Decimal(str(due[ref])).quantize(Decimal("0.01")) == closing.quantize(Decimal("0.01"))


def assert_settlements_date_as_the_statement_lines(engine, cid):
    """What a past statement ages over (`settlements_in`): the invoices issued by its end less the
    settlements dated by then add up to its closing balance, on every day the books name."""
    for ref in CUSTOMERS:
        invoices = portal.visible_invoices(engine, cid, ref)
        with engine.connect() as connection:
            settled = settlements_in(connection, cid, ref)
        lines = portal.statement(engine, cid, ref).lines
        named = {line.entry_date for line in lines} | {s.on for s in settled} | {DAY0 - timedelta(days=1)}
        for end in sorted(d for d in named if d is not None):
            issued = sum((i.total for i in invoices if i.issue_date is None or i.issue_date <= end), ZERO)
            paid = sum((s.amount for s in settled if s.on is None or s.on <= end), ZERO)
            assert portal.statement(engine, cid, ref, end=end).closing_balance == issued - paid, (ref, end)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(books_=company())
def test_closing_running_balance_equals_balance_due(shared_engine, books_):
    engine = shared_engine
    invoices, payments, credits, order, changes = books_
    cid = f"p{uuid.uuid4().hex[:10]}"
    books.company(engine, cid)
    books.customers(engine, cid, CUSTOMERS)
    write(engine, cid, consistent(invoices, payments, credits), payments, credits, order)
    assert_closing_equals_balance_due(engine, cid)
    assert_settlements_date_as_the_statement_lines(engine, cid)

    payments, credits = mutate(list(payments), list(credits), changes)
    write(engine, cid, consistent(invoices, payments, credits), payments, credits, order)
    assert_closing_equals_balance_due(engine, cid)
    assert_settlements_date_as_the_statement_lines(engine, cid)
