"""Account history end to end: a generated company with payments and credit notes, synced
through the official SDKs into the store, then every kind of change in the books and an
incremental sync: each customer's statement closes at its balance due (SPEC section 9), on
SQLite and PostgreSQL, for QuickBooks and Xero."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, bindparam, text

from connectors.simulators import mutations
from connectors.simulators.generator import generate_company
from connectors.simulators.ledger import inconsistencies
from connectors.simulators.model import SimCompany
from connectors.simulators.xero import XeroSimulator
from portal_rules.types import CompanyPolicy
from store.db import make_engine, upgrade
from sync.orchestrator import sync_company
from tests.connectors import qbo_fixtures
from tests.connectors.xero_fixtures import ROOMY, FakeClock, XeroWorld

CENT = Decimal("0.01")
CLOSING = """
    SELECT c.customer_ref, c.balance_due, s.amount
    FROM portal_customers c LEFT JOIN portal_statement s
      ON s.company_id = c.company_id AND s.customer_ref = c.customer_ref
    WHERE c.company_id = :company"""


@dataclass
class Books:
    """One company served by its simulator, synced into the store by the real connector."""

    company_id: str
    company: SimCompany
    engine: Engine
    connector: Callable[[], object]
    later: Callable[[], datetime]  # a mutation time after the last sync, moving the clock on
    now: Callable[[], datetime]

    def sync(self) -> None:
        policy = CompanyPolicy(plan="pro", timezone="UTC")
        summary = sync_company(
            self.engine, self.company_id, policy, self.connector(), owner="t", clock=self.now
        )
        assert summary.status == "ok", summary.error

    def assert_statements_close(self) -> None:
        """Each customer's statement amounts add up to its balance due, and its last line says so."""
        assert inconsistencies(self.company) == []
        with self.engine.connect() as connection:
            rows = connection.execute(text(CLOSING), {"company": self.company_id}).all()
            last = dict(connection.execute(text(LAST_ROWS), {"company": self.company_id}).all())
        due: dict[str, Decimal] = {}
        total: dict[str, Decimal] = {}
        for ref, balance_due, amount in rows:
            due[ref] = _money(balance_due)
            total[ref] = total.get(ref, Decimal("0.00")) + _money(amount or 0)
        assert due and total == due
        assert {ref: _money(last.get(ref, 0)) for ref in due} == due


def _money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


LAST_ROWS = """
    SELECT customer_ref, running_balance FROM (
        SELECT customer_ref, running_balance, ROW_NUMBER() OVER (
            PARTITION BY customer_ref ORDER BY entry_date IS NULL, entry_date DESC,
            CASE kind WHEN 'payment' THEN 0 WHEN 'credit' THEN 1 ELSE 2 END, ref DESC) AS n
        FROM portal_statement WHERE company_id = :company) ranked
    WHERE n = 1"""


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@contextmanager
def quickbooks(engine: Engine, seed: int) -> Iterator[Books]:
    company = generate_company("quickbooks", seed=seed, customers=25, invoices=300, today=date(2025, 6, 1))
    with qbo_fixtures.open_world(company, engine) as world:
        clock = world.clock
        yield Books(qbo_fixtures.COMPANY, company, engine, world.connector, lambda: clock.advance(minutes=1),
                    lambda: clock.advance(minutes=30))  # fmt: skip


@contextmanager
def xero(engine: Engine, seed: int) -> Iterator[Books]:
    company = generate_company("xero", seed=seed, customers=25, invoices=300, today=date(2025, 6, 1))
    clock = FakeClock()
    with XeroSimulator([company], clock=clock, limits=ROOMY) as sim:
        world = XeroWorld(sim, clock, engine)
        world.connect(company.id)

        def later() -> datetime:
            clock.advance(60)
            return world.now()

        yield Books(company.id, company, engine, lambda: world.connector(company.id), later, world.now)


def _visible_open(books: Books, *, paid: bool | None = None) -> list:
    with books.engine.connect() as connection:
        refs = {r for (r,) in connection.execute(
            text("SELECT invoice_ref FROM portal_invoices WHERE company_id = :c"), {"c": books.company_id}
        )}  # fmt: skip
    return [
        i for i in books.company.invoices.values()
        if i.id in refs and i.status == "open"
        and (paid is None or (i.balance < i.total) == paid) and i.balance > 0
    ]  # fmt: skip


def _mutations(books: Books, rng: random.Random) -> Iterator[str]:
    """Each kind of change once (on visible invoices, where the statement must follow)."""
    company = books.company
    unpaid = rng.choice(_visible_open(books, paid=False))
    mutations.pay(company, unpaid.id, (unpaid.balance / 2).quantize(CENT), books.later())
    yield "partial pay"
    mutations.pay(company, unpaid.id, unpaid.balance, books.later())
    yield "pay in full"
    mutations.refund(company, unpaid.id, Decimal("1.00"), books.later())
    yield "refund"
    other = rng.choice([i for i in _visible_open(books) if i.id != unpaid.id])
    credit = mutations.add_credit(
        company, other.customer_id, other.balance + 5, books.later(), apply_to={other.id: other.balance}
    )
    yield "credit note applied"
    payment = next(p for p in reversed(company.payments.values()) if p.live and p.amount > 0)
    mutations.void_payment(company, payment.id, books.later())
    yield "void a payment"
    payment = next(p for p in company.payments.values() if p.live and p.amount > 0 and p.allocations)
    mutations.delete_payment(company, payment.id, books.later())
    yield "delete a payment"
    mutations.void_credit(company, credit.id, books.later())
    yield "void the credit note"


@pytest.mark.parametrize("system", [quickbooks, xero], ids=["quickbooks", "xero"])
def test_statements_close_at_the_balance_due_after_every_change(engine, system):
    with system(engine, seed=31) as books:
        books.sync()
        books.assert_statements_close()
        with engine.connect() as connection:
            payments = connection.scalar(text("SELECT COUNT(*) FROM portal_payments"))
            credits = connection.scalar(text("SELECT COUNT(*) FROM portal_credits"))
            kinds = {k for (k,) in connection.execute(text("SELECT DISTINCT kind FROM portal_statement"))}
        assert payments > 50 and credits > 0 and kinds == {"invoice", "payment", "credit"}
        for change in _mutations(books, random.Random(31)):
            books.sync()
            try:
                books.assert_statements_close()
            except AssertionError as error:
                raise AssertionError(f"after {change}: {error}") from error


def test_a_credit_application_whose_note_begins_with_voided_is_no_void(engine):
    """QuickBooks voids a payment by zeroing its amounts and lines and prepending "Voided" to
    its note. A credit memo applied through a payment of TotalAmt 0 has zero totals too: its
    own note beginning with the word ("Voided check ...") left the credit out of the
    statement, which then no longer closed at the balance due. Voided for real, it is out."""
    with quickbooks(engine, seed=31) as books:
        books.sync()
        invoice, ten = max(_visible_open(books), key=lambda i: i.balance), Decimal("10.00")
        credit = mutations.add_credit(
            books.company, invoice.customer_id, invoice.balance, books.later(), apply_to={invoice.id: ten}
        )
        carrier = books.company.payments[credit.allocations[0].via]
        carrier.note = "Voided check 1043, settled with this credit memo"
        books.sync()
        books.assert_statements_close()
        with engine.connect() as connection:
            lines = connection.execute(STATEMENT_LINES, {"c": books.company_id, "refs": [credit.id]}).all()
        assert [(ref, kind, _money(amount)) for ref, kind, amount in lines] == [(credit.id, "credit", -ten)]
        mutations.void_payment(books.company, carrier.id, books.later())
        books.sync()
        books.assert_statements_close()
        with engine.connect() as connection:
            lines = connection.execute(STATEMENT_LINES, {"c": books.company_id, "refs": [credit.id]}).all()
        assert lines == []


def test_a_write_off_by_journal_entry_is_a_credit_line_and_the_payment_shows_its_money(engine):
    """QuickBooks: part of an invoice written off by a journal entry, applied by a payment that
    brings most of the rest as money, then its last $5 written off alone. The statement shows
    the journal entries' credit and the payment's money apart, and still closes at the balance
    due (the payment's line was the sum of both; a write-off alone left the $5 owed)."""
    with quickbooks(engine, seed=31) as books:
        books.sync()
        invoice = max(_visible_open(books), key=lambda i: i.balance)
        money, whole = invoice.balance - Decimal("15.00"), Decimal("5.00")
        ten = Decimal("10.00")
        part_paid = mutations.write_off(books.company, invoice.id, ten, books.later(), money=money)
        written_off = mutations.write_off(books.company, invoice.id, whole, books.later())
        books.sync()
        books.assert_statements_close()
        [(journal, _)], [(whole_journal, _)] = part_paid.journals, written_off.journals
        refs = [part_paid.id, written_off.id, journal, whole_journal]
        with engine.connect() as connection:
            lines = connection.execute(STATEMENT_LINES, {"c": books.company_id, "refs": refs}).all()
            paid = connection.execute(PAYMENTS, {"c": books.company_id, "refs": refs}).all()
        assert sorted((kind, ref, _money(amount)) for ref, kind, amount in lines) == sorted([
            ("payment", part_paid.id, -money),
            ("credit", journal, Decimal("-10.00")),
            ("credit", whole_journal, -whole),
        ])  # fmt: skip
        assert [(ref, _money(amount)) for ref, amount in paid] == [(part_paid.id, money)]
        assert invoice.balance == 0


def test_an_upgrade_rewrites_the_write_offs_an_earlier_release_stored_as_money(engine):
    """Version-2 code stored a journal entry's write-off as the payment's money. After the
    upgrade, its cursor starts one full pull, which rewrites the payment: the statement is
    right again without anyone running `arsync sync --full`, and with no change in the books.
    The run is a full one, as `--full` would be: marked so, and what it did not see is
    confirmed gone by id and marked deleted (here an invoice QuickBooks lost without a word,
    as past CDC's 30 days)."""
    with quickbooks(engine, seed=37) as books:
        books.sync()
        invoice = max(_visible_open(books), key=lambda i: i.balance)
        ten = Decimal("10.00")
        money = invoice.balance - ten
        paid = mutations.write_off(books.company, invoice.id, ten, books.later(), money=money)
        books.sync()
        [(journal, _)] = paid.journals
        company = {"c": books.company_id, "refs": [paid.id, journal]}
        with engine.begin() as connection:  # as the earlier release left the store
            connection.execute(
                text(
                    "UPDATE allocations SET source_kind = 'payment', source_ref = owner_ref"
                    " WHERE company_id = :c AND source_kind = 'journal'"
                ),
                company,
            )
            raw = connection.scalar(text("SELECT cursor FROM sync_cursors WHERE company_id = :c"), company)
            stored = json.loads(raw)
            earlier = json.dumps({**stored, "connector": {**stored["connector"], "v": 2}})
            connection.execute(
                text("UPDATE sync_cursors SET cursor = :e WHERE company_id = :c"), {**company, "e": earlier}
            )

        def lines() -> list[tuple[str, str, Decimal]]:
            with engine.connect() as connection:
                found = connection.execute(STATEMENT_LINES, company).all()
            return sorted((kind, ref, _money(amount)) for ref, kind, amount in found)

        assert lines() == [("payment", paid.id, -(money + ten))]  # the earlier release's money
        lost = min(_visible_open(books, paid=False), key=lambda i: int(i.id))
        del books.company.invoices[lost.id]
        books.company.revision += 1
        books.sync()
        assert lines() == sorted([("payment", paid.id, -money), ("credit", journal, -ten)])
        books.assert_statements_close()
        with engine.connect() as connection:
            last_full = connection.scalar(
                text('SELECT "full" FROM sync_runs WHERE company_id = :c ORDER BY id DESC LIMIT 1'), company
            )
            shown = connection.scalar(
                text("SELECT COUNT(*) FROM portal_invoices WHERE company_id = :c AND invoice_ref = :r"),
                {**company, "r": lost.id},
            )
        assert bool(last_full) and shown == 0


STATEMENT_LINES = text(
    "SELECT ref, kind, amount FROM portal_statement WHERE company_id = :c AND ref IN :refs"
).bindparams(bindparam("refs", expanding=True))
PAYMENTS = text(
    "SELECT payment_ref, amount FROM portal_payments WHERE company_id = :c AND payment_ref IN :refs"
).bindparams(bindparam("refs", expanding=True))


@pytest.mark.parametrize(
    ("system", "reason"),
    [(quickbooks, "negative TotalAmt -"), (xero, "Amount is negative: -")],
    ids=["quickbooks", "xero"],
)
def test_a_payment_the_books_send_negative_is_quarantined_and_its_stored_row_kept(engine, system, reason):
    """No accounting system sends a payment below zero (money going back is a refund, a
    document of its own). One that arrives so is quarantined, saying why, and the payment
    as last read stays in the portal and the statement; before, it was stored and shown as
    money the customer owed."""
    with system(engine, seed=31) as books:
        books.sync()
        shown = """SELECT amount FROM portal_payments WHERE company_id = :c AND payment_ref = :p"""
        listed = """SELECT amount FROM portal_statement
                    WHERE company_id = :c AND kind = 'payment' AND ref = :p"""
        with engine.connect() as connection:
            in_portal = set(connection.scalars(text(
                """SELECT s.ref FROM portal_statement s JOIN portal_payments p
                   ON p.company_id = s.company_id AND p.payment_ref = s.ref
                   WHERE s.company_id = :c AND s.kind = 'payment'"""), {"c": books.company_id}))  # fmt: skip
        payment = next(p for p in books.company.payments.values() if p.id in in_portal and p.amount > 0)
        with engine.connect() as connection:
            before = [connection.execute(text(sql), {"c": books.company_id, "p": payment.id}).all()
                      for sql in (shown, listed)]  # fmt: skip
        assert all(rows for rows in before)

        payment.amount = -payment.amount
        mutations._touch(books.company, payment, books.later())
        books.sync()

        with engine.connect() as connection:
            after = [connection.execute(text(sql), {"c": books.company_id, "p": payment.id}).all()
                     for sql in (shown, listed)]  # fmt: skip
            quarantined = connection.execute(
                text("""SELECT entity, ref, reason FROM quarantine
                        WHERE company_id = :c AND resolved_at IS NULL"""),
                {"c": books.company_id},
            ).all()
        assert after == before
        assert [(entity, ref) for entity, ref, _ in quarantined] == [("payments", payment.id)]
        assert reason in quarantined[0][2]
