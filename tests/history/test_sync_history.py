"""Payments and credits through `sync_company`: written per page, counted, screened for
out-of-range amounts, and reconciled by a full pull (a payment it no longer reads is gone)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import text

from portal_rules.records import CustomerRecord, Page
from portal_rules.types import CompanyPolicy
from store import portal
from sync.orchestrator import sync_company
from tests.history import books
from tests.history.books import NOW, credit, invoice, pay, payment


@dataclass
class Source:
    """A full pull of fixed books, one page per entity (a stand-in for a connector)."""

    payments: list = field(default_factory=list)
    credits: list = field(default_factory=list)
    kind: str = "scripted"
    invoices: tuple = (invoice("I1", "C1", "100", "30"), invoice("I2", "C1", "50", "50"))
    customers: tuple = (CustomerRecord("C1", "Zoë", True, ("zoe@example.com",)),)

    def pages(self, cursor: dict | None, *, full: bool = False) -> Iterator[Page]:
        yield Page("customers", self.customers, cursor={"at": 1}, api_calls=1)
        yield Page("invoices", self.invoices, cursor={"at": 2}, api_calls=1)
        yield Page("payments", tuple(self.payments), cursor={"at": 3}, api_calls=1)
        yield Page("credits", tuple(self.credits), cursor={"at": 4}, api_calls=1, full_sync_complete=True)


def test_a_full_pull_writes_counts_screens_and_reconciles_the_account_history(shared_engine, cid):
    engine = shared_engine
    books.company(engine, cid)
    policy = CompanyPolicy(plan="pro", timezone="UTC")
    huge = payment("P9", "C1", "1e30", pay("payment", "P9", "I2", "1"))
    source = Source(
        payments=[payment("P1", "C1", "50", pay("payment", "P1", "I1", "50")), huge],
        credits=[credit("CN1", "C1", "20", "0", pay("credit", "CN1", "I1", "20"))],
    )
    summary = sync_company(engine, cid, policy, source, full=True, owner="t", clock=lambda: NOW)
    assert summary.status == "ok", summary.error
    assert (summary.payments, summary.credits, summary.quarantined) == (1, 1, 1)
    assert "1 payments, 1 credits" in summary.describe()
    assert summary.as_json()["payments"] == 1
    with engine.connect() as connection:
        reason = connection.scalar(
            text("SELECT reason FROM quarantine WHERE company_id = :c AND ref = 'P9'"), {"c": cid}
        )
        counted = connection.execute(
            text("SELECT payments, credits, quarantined FROM sync_runs WHERE id = :r"), {"r": summary.run_id}
        ).one()
    assert tuple(counted) == (1, 1, 1)  # the run's row counts the account history too
    assert reason.startswith("amount out of range")
    statement = portal.statement(engine, cid, "C1")
    assert [(x.kind, x.ref, x.amount) for x in statement.lines] == [
        ("invoice", "I1", Decimal(100)), ("invoice", "I2", Decimal(50)),
        ("credit", "CN1", Decimal(-20)), ("payment", "P1", Decimal(-50)),
    ]  # fmt: skip
    assert statement.closing_balance == portal.balances(engine, cid, "C1", date(2026, 12, 1)).balance_due

    source.payments = []  # P1 gone from the books: the next full pull no longer reads it
    assert sync_company(engine, cid, policy, source, full=True, owner="t", clock=lambda: NOW).status == "ok"
    assert portal.payments(engine, cid, "C1") == []
    assert [x.ref for x in portal.statement(engine, cid, "C1").lines] == ["I1", "I2", "CN1"]


def test_records_whose_ids_outgrow_the_store_are_quarantined_and_the_rest_synced(shared_engine, cid):
    """An id or currency code longer than its column (no accounting system sends one, but a
    broken answer may) is quarantined like an amount out of range. PostgreSQL refused the
    whole page, and every later sync of the company, as "store unavailable"."""
    engine = shared_engine
    books.company(engine, cid)
    policy = CompanyPolicy(plan="pro", timezone="UTC")
    long_line = payment("P8", "C1", "10", pay("payment", "P8", "I" * 65, "10"))
    long_currency = replace(invoice("I3", "C1", "5"), currency="DOLLARSXYZ")
    source = Source(
        payments=[payment("P1", "C1", "50", pay("payment", "P1", "I1", "50")), long_line],
        invoices=(invoice("I1", "C1", "100", "30"), invoice("I2", "C1", "50", "50"), long_currency),
    )
    summary = sync_company(engine, cid, policy, source, full=True, owner="t", clock=lambda: NOW)
    assert summary.status == "ok", summary.error
    assert (summary.invoices, summary.payments, summary.quarantined) == (2, 1, 2)
    assert _quarantined(engine, cid) == [
        ("I3", "currency is 10 characters, longer than the store's 8"),
        ("P8", "an allocation's invoice_ref is 65 characters, longer than the store's 64"),
    ]
    assert _refs(engine, cid, "invoices") == ["I1", "I2"]


def test_records_holding_a_nul_character_are_quarantined_and_the_rest_synced(shared_engine, cid):
    """A NUL in a name, a document number or an id (a pasted name, a broken answer): the
    record is quarantined, its ref shown with U+FFFD. PostgreSQL refused the page, and every
    later sync of the company, as "store unavailable: invalid byte sequence"."""
    engine = shared_engine
    books.company(engine, cid)
    source = Source(
        customers=(
            CustomerRecord("C1", "Zoë", True, ("zoe@example.com",)),
            CustomerRecord("C2", "Pasted\x00Name", True, ("c2@example.com",)),
            CustomerRecord("C3", "Third", True, ("c3@exa\x00mple.com",)),
        ),
        invoices=(
            invoice("I1", "C1", "100", "30"),
            replace(invoice("I2", "C1", "50"), doc_number="A\x00B"),
            invoice("I\x003", "C1", "5"),
        ),
    )
    policy = CompanyPolicy(plan="pro", timezone="UTC")
    summary = sync_company(engine, cid, policy, source, full=True, owner="t", clock=lambda: NOW)
    assert summary.status == "ok", summary.error
    assert (summary.customers, summary.invoices, summary.quarantined) == (1, 1, 4)
    nul = "holds a NUL character, which the store cannot keep"
    assert _quarantined(engine, cid) == [
        ("C2", "display_name holds a NUL character, which the store cannot keep"),
        ("C3", "one of its emails holds a NUL character, which the store cannot keep"),
        ("I2", "doc_number holds a NUL character, which the store cannot keep"),
        ("I\ufffd3", f"ref {nul}; doc_number {nul}"),  # the helper numbers the document after its id
    ]
    assert (_refs(engine, cid, "customers"), _refs(engine, cid, "invoices")) == (["C1"], ["I1"])


def _quarantined(engine, cid: str) -> list[tuple]:
    """(ref, reason) of the company's quarantined records, by ref."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT ref, reason FROM quarantine WHERE company_id = :c ORDER BY ref"), {"c": cid}
        )
        return [tuple(row) for row in rows]


def _refs(engine, cid: str, table: str) -> list[str]:
    """The refs the company's `table` holds, in order."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text(f"SELECT ref FROM {table} WHERE company_id = :c ORDER BY ref"), {"c": cid}
            )
        )


def _lines(engine, cid: str) -> list[tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT owner_ref, line, invoice_ref FROM allocations"
                " WHERE company_id = :c ORDER BY owner_ref, line"
            ),
            {"c": cid},
        )
        return [tuple(row) for row in rows]


def test_a_full_pull_of_stored_books_replaces_the_lines_a_payment_no_longer_has(shared_engine, cid):
    """A first full pull inserts its payments and credits unread; a later one finds them stored
    and must still drop the allocation lines the source took away."""
    engine = shared_engine
    books.company(engine, cid)
    policy = CompanyPolicy(plan="pro", timezone="UTC")
    source = Source(
        payments=[
            payment("P1", "C1", "50", pay("payment", "P1", "I1", "30"), pay("payment", "P1", "I2", "20"))
        ],
        credits=[
            credit("CN1", "C1", "20", "0", pay("credit", "CN1", "I1", "10"), pay("credit", "CN1", "I2", "10"))
        ],
    )
    assert sync_company(engine, cid, policy, source, full=True, owner="t", clock=lambda: NOW).status == "ok"
    assert len(_lines(engine, cid)) == 4
    source.payments = [payment("P1", "C1", "50", pay("payment", "P1", "I2", "50"))]
    source.credits = [credit("CN1", "C1", "20", "0", pay("credit", "CN1", "I1", "20"))]
    summary = sync_company(engine, cid, policy, source, full=True, owner="t", clock=lambda: NOW)
    assert summary.status == "ok", summary.error
    assert (summary.payments, summary.credits) == (1, 1)
    assert _lines(engine, cid) == [("CN1", 0, "I1"), ("P1", 0, "I2")]
