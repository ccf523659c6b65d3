"""Money through the store is exact: Decimal in, the same Decimal out, on SQLite and PostgreSQL.

Amounts go in through `store.writes.write_invoices` and come back through `store.portal`
(`visible_invoices`, `balances`) and the public views. The store keeps four places:
PostgreSQL as NUMERIC(20,4), SQLite as a 64-bit integer of ten-thousandths. Each backend's
range is tested up to its own limit (SQLite's is lower: 922,337,203,685,477.5807).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from portal_rules.records import CustomerRecord, InvoiceRecord
from store import portal
from store.companies import CompanyRow, register_companies
from store.db import make_engine, upgrade
from store.writes import write_customers, write_invoices
from tests.conftest import PG_BASE, _pg_available

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
COMPANY = "acme"
QUANTUM = Decimal("0.0001")
# The largest magnitude each backend stores: NUMERIC(20,4) on PostgreSQL; on SQLite the
# scaled integer must fit in 64 bits.
LIMIT = {"postgresql": Decimal("9999999999999999.9999"), "sqlite": Decimal(2**63 - 1).scaleb(-4)}
# Sums are checked against amounts an order of magnitude under the limit, so that the sum
# of a page of them still fits (a SUM past the limit is an error on both backends).
PER_INVOICE = {name: (limit / 100).quantize(QUANTUM) for name, limit in LIMIT.items()}
# On SQLite the views present money as a REAL (ten-thousandths / 10000.0). A double holds
# any decimal of at most 15 significant digits exactly enough that str() gives it back
# (DBL_DIG = 15): with four places that is every amount under 10^11 (100 billion). Above
# it, the view is only accurate to a relative 2^-52; exact figures come from `store.portal`.
SQLITE_VIEW_EXACT_BELOW = Decimal(10) ** 11

STORE = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_refs = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(request, tmp_path_factory) -> Iterator[Engine]:
    """One migrated engine per backend for the whole module (examples use fresh refs)."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('money') / 'arsync.db'}"
    else:
        if not _pg_available():
            if os.environ.get("CI") == "true":
                pytest.fail("PostgreSQL is required in CI but 127.0.0.1:5432/test is unreachable")
            pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)  # survives a restart
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    register_companies(engine, [CompanyRow(COMPANY, "Acme", "UTC", "scripted")])
    yield engine
    engine.dispose()
    if schema is not None:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def backend(engine: Engine) -> str:
    return engine.dialect.name


def amounts(limit: Decimal, places: int = 4):
    return st.decimals(
        min_value=-limit, max_value=limit, places=places, allow_nan=False, allow_infinity=False
    )


@st.composite
def invoice_pages(draw, limit: Decimal, places: int = 4) -> list[tuple[Decimal, Decimal, bool, int]]:
    """(balance, total, sent, days until due) per invoice."""
    return draw(
        st.lists(
            st.tuples(amounts(limit, places), amounts(limit, places), st.booleans(), st.integers(-30, 30)),
            min_size=1,
            max_size=8,
        )
    )


def write_page(engine: Engine, page) -> tuple[str, list[InvoiceRecord]]:
    """A new customer with `page` as its invoices; returns its ref and what was written."""
    customer = f"c{next(_refs)}"
    invoices = [
        InvoiceRecord(
            ref=f"{customer}-{index}",
            customer_ref=customer,
            doc_number=f"INV-{index}",
            issue_date=TODAY - timedelta(days=40),
            due_date=TODAY + timedelta(days=due_in),
            currency="USD",
            total=total,
            balance=balance,
            source_sent=sent,
        )
        for index, (balance, total, sent, due_in) in enumerate(page)
    ]
    with engine.begin() as connection:
        write_customers(
            connection,
            COMPANY,
            [CustomerRecord(customer, "Customer", True, (f"{customer}@x.example",))],
            import_inactive=False,
            now=NOW,
        )
        write_invoices(connection, COMPANY, invoices, now=NOW)
    return customer, invoices


def view_amount(value, engine: Engine) -> Decimal:
    """A money column read from a public view, as a Decimal."""
    if backend(engine) == "postgresql":
        assert type(value) is Decimal
        return value
    assert isinstance(value, int | float)  # REAL on SQLite (see SQLITE_VIEW_EXACT_BELOW)
    return Decimal(str(value)).quantize(QUANTUM)


def assert_view_equals(value, expected: Decimal, engine: Engine) -> None:
    if backend(engine) == "sqlite" and abs(expected) >= SQLITE_VIEW_EXACT_BELOW:
        # The double's own value: its shortest repr (what `view_amount` reads) keeps only the
        # digits that tell doubles apart, up to half an ulp off, on top of the view's error.
        assert isinstance(value, int | float)
        assert abs(Decimal(value) - expected) <= abs(expected) * Decimal(2) ** -52
    else:
        assert view_amount(value, engine) == expected


@STORE
@given(data=st.data())
def test_amounts_come_back_exactly(store, data):
    page = data.draw(invoice_pages(LIMIT[backend(store)]))
    customer, written = write_page(store, page)

    shown = portal.visible_invoices(store, COMPANY, customer)
    sent = [i for i in written if i.source_sent]
    assert [i.invoice_ref for i in shown] == [i.ref for i in sorted(sent, key=lambda i: (i.due_date, i.ref))]
    by_ref = {i.ref: i for i in written}
    for invoice in shown:
        assert type(invoice.balance) is Decimal and type(invoice.total) is Decimal
        assert invoice.balance == by_ref[invoice.invoice_ref].balance
        assert invoice.total == by_ref[invoice.invoice_ref].total
        assert invoice.balance.as_tuple().exponent == -4  # four places, as stored


@STORE
@given(data=st.data())
def test_balances_are_exact_sums(store, data):
    page = data.draw(invoice_pages(PER_INVOICE[backend(store)]))
    customer, written = write_page(store, page)
    sent = [i for i in written if i.source_sent]
    expected_due = sum((i.balance for i in sent), Decimal(0))
    expected_past = sum((i.balance for i in sent if i.balance > 0 and i.due_date < TODAY), Decimal(0))

    balances = portal.balances(store, COMPANY, customer, TODAY)
    assert type(balances.balance_due) is Decimal and type(balances.past_due_amount) is Decimal
    assert balances.balance_due == expected_due
    assert balances.past_due_amount == expected_past
    assert balances.past_due is (expected_past > 0)

    with store.connect() as connection:
        view_due = connection.scalar(
            text("SELECT balance_due FROM portal_customers WHERE company_id = :c AND customer_ref = :r"),
            {"c": COMPANY, "r": customer},
        )
        view_rows = connection.execute(
            text(
                "SELECT invoice_ref, balance, total FROM portal_invoices"
                " WHERE company_id = :c AND customer_ref = :r"
            ),
            {"c": COMPANY, "r": customer},
        ).all()
    assert_view_equals(view_due, expected_due, store)
    by_ref = {i.ref: i for i in written}
    assert sorted(r.invoice_ref for r in view_rows) == sorted(i.ref for i in sent)
    for row in view_rows:
        assert_view_equals(row.balance, by_ref[row.invoice_ref].balance, store)
        assert_view_equals(row.total, by_ref[row.invoice_ref].total, store)


@STORE
@given(data=st.data())
def test_more_than_four_places_are_rounded_half_even(store, data):
    """The store keeps four places: extra ones are rounded half-even (banker's rounding),
    so ties go to the even digit (0.00005 -> 0.0000, 0.00015 -> 0.0002)."""
    page = data.draw(invoice_pages(PER_INVOICE[backend(store)] / 10, places=8))
    customer, written = write_page(store, [(b, t, True, d) for b, t, _, d in page])
    shown = {i.invoice_ref: i for i in portal.visible_invoices(store, COMPANY, customer)}
    for invoice in written:
        assert shown[invoice.ref].balance == invoice.balance.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
        assert shown[invoice.ref].total == invoice.total.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
    expected = sum((i.balance.quantize(QUANTUM, rounding=ROUND_HALF_EVEN) for i in written), Decimal(0))
    assert portal.balances(store, COMPANY, customer, TODAY).balance_due == expected


@pytest.mark.parametrize(
    ("given_", "stored"),
    [("0.00005", "0.0000"), ("0.00015", "0.0002"), ("0.00025", "0.0002"), ("-0.00015", "-0.0002"),
     ("1.23456789", "1.2346"), ("100", "100.0000")],
    ids=["tie-down-to-even", "tie-up-to-even", "tie-down-to-even-2", "negative-tie", "plain-rounding",
         "integer"],
)  # fmt: skip
def test_rounding_table(store, given_, stored):
    customer, _ = write_page(store, [(Decimal(given_), Decimal(given_), True, 0)])
    [shown] = portal.visible_invoices(store, COMPANY, customer)
    assert str(shown.balance) == stored


def test_a_balance_rounded_away_is_not_a_reopening(store):
    """0.00001 is stored as 0: seeing it again on the next sync must not record an adjustment
    each time (it did, before amounts were rounded before being compared)."""
    customer, _ = write_page(store, [(Decimal("0"), Decimal("10"), True, 0)])
    invoice = InvoiceRecord(
        f"{customer}-0", customer, "INV-0", None, None, "USD", Decimal("10"), Decimal("0.00001"), True
    )
    for _ in range(3):
        with store.begin() as connection:
            assert write_invoices(connection, COMPANY, [invoice], now=NOW) == (1, 0)
    with store.connect() as connection:
        count = connection.scalar(
            text("SELECT COUNT(*) FROM adjustments WHERE invoice_ref = :r"), {"r": invoice.ref}
        )
    assert count == 0


def test_floats_are_refused(store):
    customer = f"c{next(_refs)}"
    invoice = InvoiceRecord(f"{customer}-0", customer, None, None, None, "USD", 1.5, 1.5, True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Decimal, not float"), store.begin() as connection:
        write_invoices(connection, COMPANY, [invoice], now=NOW)


@pytest.mark.parametrize("magnitude", ["1e16", "1e20"], ids=["past-numeric-20-4", "far-past"])
def test_an_amount_past_the_limit_is_refused_and_nothing_is_written(store, magnitude):
    """The store never silently truncates: an amount past the column's range fails the write
    (and its transaction). The sync does not quarantine such a record yet: see the report."""
    customer = f"c{next(_refs)}"
    amount = Decimal(magnitude)
    invoice = InvoiceRecord(
        f"{customer}-0", customer, None, None, date(2026, 1, 1), "USD", amount, amount, True
    )
    with pytest.raises(Exception), store.begin() as connection:  # noqa: B017 - driver-specific errors
        write_invoices(connection, COMPANY, [invoice], now=NOW)
    with store.connect() as connection:
        count = connection.scalar(text("SELECT COUNT(*) FROM invoices WHERE ref = :r"), {"r": invoice.ref})
    assert count == 0


def test_a_sync_quarantines_an_amount_the_store_cannot_hold(store):
    from portal_rules.records import CustomerRecord, InvoiceRecord
    from portal_rules.types import CompanyPolicy
    from sync.orchestrator import sync_company
    from tests.sync.scripted import ScriptedSource

    company = f"huge{next(_refs)}"
    register_companies(store, [CompanyRow(company, "Huge", "UTC", "scripted")])
    huge, fine = Decimal("1e20"), Decimal("12.34")
    source = ScriptedSource(
        [CustomerRecord("1", "One", True, ("one@x.example",))],
        [
            InvoiceRecord("big", "1", "INV-1", None, TODAY, "USD", huge, huge, True),
            InvoiceRecord("ok", "1", "INV-2", None, TODAY, "USD", fine, fine, True),
        ],
    )
    summary = sync_company(
        store, company, CompanyPolicy(plan="pro", timezone="UTC"), source, owner="t", clock=lambda: NOW
    )
    assert summary.status == "ok", summary.error
    assert summary.quarantined == 1
    assert portal.balances(store, company, "1", TODAY).balance_due == fine
