"""Payments, credits and allocations through the store's writers, read back through the public
views and `store.portal`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, text

from store import portal
from store.history.reads import HistoryOverview, overview
from store.history.views import order_sql
from tests.history import books
from tests.history.books import D, credit, invoice, pay, payment


def money(value) -> Decimal:
    """A view's money column (a number on SQLite, NUMERIC on PostgreSQL) as an exact amount."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def statement_rows(engine: Engine, company_id: str, customer_ref: str) -> list[tuple]:
    sql = (
        "SELECT entry_date, kind, ref, doc_number, amount, running_balance FROM portal_statement "
        f"WHERE company_id = :c AND customer_ref = :r ORDER BY {order_sql(engine.dialect.name)}"
    )
    with engine.connect() as connection:
        rows = connection.execute(text(sql), {"c": company_id, "r": customer_ref}).all()
    return [(str(d) if d else None, k, ref, doc, money(a), money(b)) for d, k, ref, doc, a, b in rows]


def balance_due(engine: Engine, company_id: str, customer_ref: str) -> Decimal:
    with engine.connect() as connection:
        value = connection.scalar(
            text("SELECT balance_due FROM portal_customers WHERE company_id = :c AND customer_ref = :r"),
            {"c": company_id, "r": customer_ref},
        )
    return money(value)


def seed_acme(engine: Engine, company_id: str) -> None:
    """One customer with a paid, a part-paid, an unsent and an open invoice; money and credit
    applied both the QuickBooks way (through a payment) and the Xero way (by the credit)."""
    books.company(engine, company_id)
    books.customers(engine, company_id, ["C1", "C2"])
    books.invoices(
        engine,
        company_id,
        [
            invoice("I1", "C1", "100", "0", issued=date(2026, 10, 1)),
            invoice("I2", "C1", "200", "150", issued=date(2026, 10, 5)),
            invoice("I3", "C1", "80", "30", sent=False),
            invoice("I4", "C1", "70", "50", issued=date(2026, 11, 1), due=date(2026, 11, 30)),
            invoice("I9", "C2", "10", "10"),
        ],
    )
    on = date(2026, 10, 15)
    books.payments(
        engine,
        company_id,
        [
            payment("P1", "C1", "100", pay("payment", "P1", "I1", "60", on)),
            payment("P2", "C1", "0", pay("credit", "CN1", "I1", "40", on), credit_only=True),
            payment("P3", "C1", "50", pay("payment", "P3", "I2", "50", on)),
            payment("P4", "C1", "50", pay("payment", "P4", "I3", "50", on)),
        ],
    )
    books.credits(
        engine,
        company_id,
        [
            credit("CN1", "C1", "50", "10"),
            credit("CN2", "C1", "20", "0", pay("credit", "CN2", "I4", "20"), on=date(2026, 11, 2)),
        ],
    )


def test_views_show_payments_credits_and_the_statement(shared_engine, cid):
    engine = shared_engine
    seed_acme(engine, cid)
    with engine.connect() as connection:
        paid = connection.execute(
            text(
                "SELECT customer_ref, payment_ref, paid_on, currency, amount, unapplied, reference "
                "FROM portal_payments WHERE company_id = :c ORDER BY payment_ref"
            ),
            {"c": cid},
        ).all()
        credited = connection.execute(
            text(
                "SELECT customer_ref, credit_ref, doc_number, issue_date, currency, total, remaining "
                "FROM portal_credits WHERE company_id = :c ORDER BY credit_ref"
            ),
            {"c": cid},
        ).all()
    # P2 only applies credit: not a customer payment.
    assert [(r[1], money(r[4]), money(r[5]), r[6]) for r in paid] == [
        ("P1", D("100.00"), D("40.00"), "CHK-P1"),
        ("P3", D("50.00"), D("0.00"), "CHK-P3"),
        ("P4", D("50.00"), D("0.00"), "CHK-P4"),
    ]
    assert [(r[1], r[2], money(r[5]), money(r[6])) for r in credited] == [
        ("CN1", "CN-CN1", D("50.00"), D("10.00")),
        ("CN2", "CN-CN2", D("20.00"), D("0.00")),
    ]
    # P4 paid only the unsent invoice I3: no statement line; CN1 arrives through P2.
    assert statement_rows(engine, cid, "C1") == [
        ("2026-10-01", "invoice", "I1", "INV-I1", D("100.00"), D("100.00")),
        ("2026-10-05", "invoice", "I2", "INV-I2", D("200.00"), D("300.00")),
        ("2026-10-10", "credit", "CN1", "CN-CN1", D("-40.00"), D("260.00")),
        ("2026-10-15", "payment", "P1", "CHK-P1", D("-60.00"), D("200.00")),
        ("2026-10-15", "payment", "P3", "CHK-P3", D("-50.00"), D("150.00")),
        ("2026-11-01", "invoice", "I4", "INV-I4", D("70.00"), D("220.00")),
        ("2026-11-02", "credit", "CN2", "CN-CN2", D("-20.00"), D("200.00")),
    ]
    assert balance_due(engine, cid, "C1") == D("200.00")
    assert overview(engine, cid) == HistoryOverview(3, 2, D("10"), "C1")


def test_store_portal_reads_exact_money_scoped_by_company(shared_engine, cid):
    engine = shared_engine
    seed_acme(engine, cid)
    other = cid + "x"
    books.company(engine, other, "Other Co")
    books.customers(engine, other, ["C1"])
    books.invoices(engine, other, [invoice("I1", "C1", "999.99")])
    books.payments(engine, other, [payment("P9", "C1", "5", pay("payment", "P9", "I1", "5"))])

    paid = portal.payments(engine, cid, "C1")
    assert [(p.payment_ref, p.amount, p.unapplied) for p in paid] == [
        ("P1", D("100"), D("40")),
        ("P3", D("50"), D("0")),
        ("P4", D("50"), D("0")),
    ]
    assert all(isinstance(p.amount, Decimal) for p in paid)
    assert [(c.credit_ref, c.remaining) for c in portal.credits(engine, cid, "C1")] == [
        ("CN1", D("10")),
        ("CN2", D("0")),
    ]
    whole = portal.statement(engine, cid, "C1")
    assert (whole.opening_balance, whole.closing_balance, len(whole.lines)) == (D(0), D("200"), 7)
    assert whole.lines[-1].running_balance == D("200")

    window = portal.statement(engine, cid, "C1", start=date(2026, 10, 10), end=date(2026, 10, 31))
    assert window.opening_balance == D("300")
    assert [line.ref for line in window.lines] == ["CN1", "P1", "P3"]
    assert window.closing_balance == D("150") == window.lines[-1].running_balance

    theirs = portal.statement(engine, other, "C1")
    assert [(line.ref, line.amount) for line in theirs.lines] == [("I1", D("999.99")), ("P9", D("-5"))]
    assert portal.payments(engine, other, "C2") == []
    assert portal.statement(engine, cid, "nobody").lines == ()


def test_ordering_is_date_then_invoice_credit_payment_then_ref_as_text(shared_engine, cid):
    engine = shared_engine
    books.company(engine, cid)
    books.customers(engine, cid, ["C1"])
    day = date(2026, 9, 1)
    books.invoices(engine, cid, [invoice(r, "C1", "10", "0", issued=day) for r in ("9", "10")])
    books.payments(engine, cid, [payment("10", "C1", "10", pay("payment", "10", "9", "10"), on=day)])
    books.credits(engine, cid, [credit("9", "C1", "10", "0", pay("credit", "9", "10", "10"), on=day)])
    books.invoices(engine, cid, [invoice("ä", "C1", "1", issued=None)])
    expected = [(None, "invoice", "ä"), *[(str(day), k, r) for k, r in
                [("invoice", "10"), ("invoice", "9"), ("credit", "9"), ("payment", "10")]]]  # fmt: skip
    assert [row[:3] for row in statement_rows(engine, cid, "C1")] == expected
    assert [(str(x.entry_date) if x.entry_date else None, x.kind, x.ref) for x in
            portal.statement(engine, cid, "C1").lines] == expected  # fmt: skip
    assert [row[5] for row in statement_rows(engine, cid, "C1")] == [D(1), D(11), D(21), D(11), D(1)]


def test_only_live_owners_and_sources_count(shared_engine, cid):
    engine = shared_engine
    seed_acme(engine, cid)
    books.payments(engine, cid, [payment("P3", "C1", "50", pay("payment", "P3", "I2", "50"), voided=True)])
    books.credits(engine, cid, [credit("CN2", "C1", "20", "0", draft=True)])
    books.payments(engine, cid, [payment("P2", "C1", "0", deleted=True)])
    refs = [row[2] for row in statement_rows(engine, cid, "C1")]
    assert refs == ["I1", "I2", "P1", "I4"]  # CN1 came only through the deleted P2
    assert [p.payment_ref for p in portal.payments(engine, cid, "C1")] == ["P1", "P4"]
    assert [c.credit_ref for c in portal.credits(engine, cid, "C1")] == ["CN1"]
    # A payment deleted by id alone keeps its stored facts, hidden.
    with engine.connect() as connection:
        sql = "SELECT deleted, customer_ref FROM payments WHERE company_id = :c AND ref = 'P2'"
        assert connection.execute(text(sql), {"c": cid}).one() == (True, "C1")


def test_rewriting_a_record_replaces_its_allocations(shared_engine, cid):
    engine = shared_engine
    seed_acme(engine, cid)
    books.payments(engine, cid, [payment("P1", "C1", "100", pay("payment", "P1", "I2", "25"))])
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT line, invoice_ref FROM allocations "
                "WHERE company_id = :c AND owner_ref = 'P1' ORDER BY line"
            ),
            {"c": cid},
        ).all()
    assert rows == [(0, "I2")]
    line = next(x for x in portal.statement(engine, cid, "C1").lines if x.ref == "P1")
    assert line.amount == D("-25")


def test_allocation_to_an_invoice_not_yet_stored_joins_when_it_arrives(shared_engine, cid):
    engine = shared_engine
    books.company(engine, cid)
    books.customers(engine, cid, ["C1"])
    books.payments(engine, cid, [payment("P1", "C1", "30", pay("payment", "P1", "LATE", "30"))])
    assert statement_rows(engine, cid, "C1") == []
    assert [p.payment_ref for p in portal.payments(engine, cid, "C1")] == ["P1"]
    books.invoices(engine, cid, [invoice("LATE", "C1", "100", "70")])
    assert [row[2:5] for row in statement_rows(engine, cid, "C1")] == [
        ("LATE", "INV-LATE", D(100)),
        ("P1", "CHK-P1", D(-30)),
    ]
    assert portal.statement(engine, cid, "C1").closing_balance == D(70) == balance_due(engine, cid, "C1")


def test_hidden_customers_have_no_history(shared_engine, cid):
    engine = shared_engine
    seed_acme(engine, cid)
    books.customers(engine, cid, ["C1"], active=False)  # imported, now inactive: hidden
    with engine.connect() as connection:
        counts = [
            connection.scalar(
                text(f"SELECT COUNT(*) FROM {view} WHERE company_id = :c AND customer_ref = 'C1'"), {"c": cid}
            )
            for view in ("portal_payments", "portal_credits", "portal_statement")
        ]
    assert counts == [0, 0, 0]
    assert portal.payments(engine, cid, "C1") == []
    assert portal.statement(engine, cid, "C1").lines == ()


def test_full_sync_marks_unseen_payments_and_credits_deleted(shared_engine, cid):
    engine = shared_engine
    from portal_rules.types import CompanyPolicy
    from store.reconcile import mark_absent, unseen

    seed_acme(engine, cid)  # written outside any run
    books.payments(engine, cid, [payment("P1", "C1", "100", pay("payment", "P1", "I1", "60"))], run_id=7)
    books.credits(engine, cid, [credit("CN2", "C1", "20", "0", pay("credit", "CN2", "I4", "20"))], run_id=7)
    with engine.begin() as connection:
        candidates = unseen(connection, cid, 7)
        history = {entity: candidates[entity] for entity in ("payments", "credits")}
        gone = mark_absent(connection, cid, CompanyPolicy(plan="pro", timezone="UTC"), history)
    assert (gone["payments"], gone["credits"]) == (3, 1)
    assert [p.payment_ref for p in portal.payments(engine, cid, "C1")] == ["P1"]
    assert [c.credit_ref for c in portal.credits(engine, cid, "C1")] == ["CN2"]


def test_aging_buckets_on_a_day(shared_engine, cid):
    engine = shared_engine
    books.company(engine, cid)
    books.customers(engine, cid, ["C1"])
    day = date(2026, 12, 1)
    due = {"A": day, "B": date(2026, 11, 30), "C": date(2026, 10, 2), "D": date(2026, 10, 1),
           "E": date(2026, 9, 2), "F": date(2026, 9, 1), "G": None}  # fmt: skip
    books.invoices(engine, cid, [invoice(r, "C1", "10", due=d) for r, d in due.items()])
    books.invoices(engine, cid, [invoice("H", "C1", "5", "0", due=date(2020, 1, 1)),
                                    invoice("U", "C1", "5", sent=False, due=date(2020, 1, 1))])  # fmt: skip
    aging = portal.aging(engine, cid, "C1", day)
    assert aging.buckets() == {
        "current": D(20),
        "1_30": D(10),
        "31_60": D(10),
        "61_90": D(20),
        "over_90": D(10),
    }
    assert aging.total == D(70)
    assert portal.aging(engine, cid + "x", "C1", day).total == 0
