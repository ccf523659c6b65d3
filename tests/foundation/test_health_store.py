"""Customer health in the store (SPEC section 10): which customers and invoices count, overrides
kept by recomputation, and a first-release database upgraded with its data, on both backends."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import Engine, insert, text

from portal_rules.health import HealthInvoice, tally
from store import health
from store.admin import NotFound
from store.db import make_engine, upgrade
from store.health_tally import company_tallies
from store.history.tables import ALLOCATIONS, CREDITS, PAYMENTS
from store.tables import Company, Customer, Invoice
from tests.foundation.schema import migrate

NOW = datetime(2026, 6, 30, 15, 0, tzinfo=UTC)
TODAY = date(2026, 6, 30)  # in America/New_York at NOW


def books(engine: Engine) -> None:
    """C1 pays on time, C2 is 90 days past due, C3 is hidden from the portal, C4 has no invoice."""
    invoice = {"company_id": "co", "currency": "USD", "source_sent": True, "total": Decimal("100")}

    def due(days_ago: int) -> date:
        return TODAY - timedelta(days=days_ago)

    with engine.begin() as connection:
        connection.execute(
            insert(Company.__table__),
            [{"company_id": "co", "name": "Co", "timezone": "America/New_York", "kind": "x"}],
        )
        connection.execute(
            insert(Customer.__table__),
            [
                {
                    "company_id": "co",
                    "ref": ref,
                    "display_name": f"Customer {ref}",
                    "portal_visible": ref != "C3",
                }
                for ref in ("C1", "C2", "C3", "C4")
            ],
        )
        connection.execute(
            insert(Invoice.__table__),
            [
                {
                    **invoice,
                    "ref": "1",
                    "customer_ref": "C1",
                    "due_date": due(30),
                    "balance": 0,
                    "visible": True,
                },
                {
                    **invoice,
                    "ref": "2",
                    "customer_ref": "C2",
                    "due_date": due(90),
                    "balance": 100,
                    "visible": True,
                },
                {
                    **invoice,
                    "ref": "3",
                    "customer_ref": "C2",
                    "due_date": due(10),
                    "balance": 0,
                    "visible": False,
                },
                {
                    **invoice,
                    "ref": "4",
                    "customer_ref": "C2",
                    "due_date": due(400),
                    "balance": 100,
                    "visible": True,
                },
                {
                    **invoice,
                    "ref": "5",
                    "customer_ref": "C3",
                    "due_date": due(90),
                    "balance": 100,
                    "visible": True,
                },
            ],
        )


def view(engine: Engine) -> dict[str, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT customer_ref, score, band, source FROM customer_health WHERE company_id = 'co'")
        )
        return {ref: rest for ref, *rest in rows}


def test_recompute_scores_customers_in_the_portal_and_keeps_overrides(engine):
    books(engine)
    # An override set before any recomputation (no sync since the upgrade) shows at once.
    health.set_override(engine, "co", "C1", 10, note=None, by="ana", now=NOW)
    assert view(engine) == {"C1": [10, "poor", "override"]}
    assert health.read(engine, "co", "C1")[0].reasons == (
        "set by ana (computed 100: paid 1 of 1 invoice on time; "
        "1 paid invoice without a payment date counted as on time)"
    )
    assert health.clear_override(engine, "co", "C1") is True

    assert health.recompute(engine, "co", NOW) == 3
    # C2: only invoice 2 counts (3 is not visible, 4 is due over a year ago): 90 days late -> 0
    assert view(engine) == {
        "C1": [100, "good", "computed"],
        "C2": [0, "poor", "computed"],
        "C4": [None, "unknown", "computed"],
    }
    health.set_override(engine, "co", "C2", 75, note="payment plan agreed", by="ana", now=NOW)
    assert health.recompute(engine, "co", NOW + timedelta(days=1)) == 3
    assert view(engine)["C2"] == [75, "good", "override"]
    worst_first = health.read(engine, "co")
    assert [(h.customer_ref, h.score) for h in worst_first] == [("C2", 75), ("C1", 100), ("C4", None)]
    assert worst_first[0].reasons.startswith("set by ana: payment plan agreed (computed 0: ")
    assert worst_first[0].computed_at == NOW
    assert health.clear_override(engine, "co", "C2") is True
    assert view(engine)["C2"] == [0, "poor", "computed"]
    with pytest.raises(NotFound, match="no customer 'C9'"):
        health.set_override(engine, "co", "C9", 50, note=None, by="ana", now=NOW)
    with pytest.raises(ValueError, match="0..100"):
        health.set_override(engine, "co", "C1", 101, note=None, by="ana", now=NOW)


def test_first_release_database_upgrades_with_its_data(store_url):
    engine = make_engine(store_url)
    migrate(engine, command.upgrade, "0001")
    books(engine)
    upgrade(engine)
    assert health.recompute(engine, "co", NOW) == 3
    assert view(engine)["C2"] == [0, "poor", "computed"]
    engine.dispose()


def allocation(owner: str, source: str, invoice: str, on: date, line: int = 0) -> dict:
    """An allocation row: owner and source as "payment:REF" / "credit:REF"."""
    (owner_kind, owner_ref), (source_kind, source_ref) = owner.split(":"), source.split(":")
    return {
        "company_id": "co",
        "owner_kind": owner_kind,
        "owner_ref": owner_ref,
        "line": line,
        "source_kind": source_kind,
        "source_ref": source_ref,
        "invoice_ref": invoice,
        "amount": Decimal("50"),
        "allocated_on": on,
    }


def ledger(connection, payments: dict[str, dict], credits: dict[str, dict], allocations: list[dict]) -> None:
    """Payments and credits by ref (with their liveness flags), and the allocations."""
    # executemany takes its columns from the first row: every row states every flag
    base = {"company_id": "co", "customer_ref": "C1", "currency": "USD", "voided": False, "deleted": False}
    if payments:
        connection.execute(
            insert(PAYMENTS),
            [{**base, "ref": r, "amount": 50, "unapplied": 0, **flags} for r, flags in payments.items()],
        )
    if credits:
        connection.execute(
            insert(CREDITS),
            [
                {**base, "ref": r, "total": 50, "remaining": 0, "draft": False, **flags}
                for r, flags in credits.items()
            ],
        )
    if allocations:
        connection.execute(insert(ALLOCATIONS), allocations)


def test_days_late_come_from_the_latest_live_allocation(engine):
    books(engine)  # invoice 1 of C1: 100.00 due 30 days ago, paid
    due = TODAY - timedelta(days=30)
    with engine.begin() as connection:
        ledger(
            connection,
            {"P1": {}, "P2": {"voided": True}, "P3": {}},
            {"R1": {}, "R2": {"draft": True}},
            [
                allocation("payment:P1", "payment:P1", "1", due + timedelta(days=5)),
                allocation("credit:R1", "credit:R1", "1", due + timedelta(days=12)),  # the latest live one
                allocation("payment:P2", "payment:P2", "1", due + timedelta(days=20)),  # voided payment
                allocation("payment:P3", "credit:R2", "1", due + timedelta(days=25)),  # draft credit applied
                allocation("credit:R9", "credit:R9", "1", due + timedelta(days=26)),  # credit not stored
            ],
        )
    health.recompute(engine, "co", NOW)
    (c1,) = health.read(engine, "co", "C1")
    assert c1.reasons == (
        "paid 0 of 1 invoice on time; 1 paid 12 days late; by invoice: 12 days late on average, 100% late"
    )
    assert c1.score == 68  # 100 - 12 - 20


def test_a_journal_entrys_credit_dates_the_invoice_while_its_payment_lives(engine):
    """QuickBooks write-offs: credit from a journal entry (not synced itself) clears the
    invoice on the day its payment applied it, and stops counting when that payment is voided."""
    books(engine)  # invoice 1 of C1: 100.00 due 30 days ago, paid
    due = TODAY - timedelta(days=30)
    with engine.begin() as connection:
        ledger(
            connection,
            {"P1": {}, "P2": {"voided": True}},
            {},
            [
                allocation("payment:P1", "payment:P1", "1", due + timedelta(days=3)),
                allocation("payment:P1", "journal:J7", "1", due + timedelta(days=9), line=1),
                allocation("payment:P2", "journal:J8", "1", due + timedelta(days=20)),  # voided payment
            ],
        )
    health.recompute(engine, "co", NOW)
    (c1,) = health.read(engine, "co", "C1")
    assert c1.reasons.startswith("paid 0 of 1 invoice on time; 1 paid 9 days late; ")


def test_the_sql_tally_equals_the_rules_tally(engine):
    """The set-based tally in SQL and `portal_rules.health.tally` agree on the same invoices,
    clearing dates from live allocations included."""
    rng = random.Random(5)
    rows, invoices, payments, credits, allocations = [], defaultdict(list), {}, {}, []
    for n in range(300):
        customer, due = f"C{n % 7}", TODAY - timedelta(days=rng.randint(-20, 380))
        total = Decimal(rng.choice([0, 1, 250, 99999])) / rng.choice([1, 100])
        balance = rng.choice([Decimal(0), total, total / 2])
        visible = rng.random() < 0.9
        rows.append(
            {
                "company_id": "co",
                "ref": str(n),
                "customer_ref": customer,
                "due_date": due,
                "currency": "USD",
                "total": total,
                "balance": balance,
                "visible": visible,
            }
        )
        dates = []
        for line in range(rng.randint(0, 3)):
            on, live = due + timedelta(days=rng.randint(-10, 90)), rng.random() < 0.7
            kind = rng.choice(["payment", "credit"])
            ref = f"{kind[0]}{n}-{line}"
            (payments if kind == "payment" else credits)[ref] = {} if live else {"deleted": True}
            allocations.append(allocation(f"{kind}:{ref}", f"{kind}:{ref}", str(n), on, line))
            dates += [on] if live else []
        if visible:
            invoices[customer].append(HealthInvoice(due, total, balance, max(dates, default=None)))
    with engine.begin() as connection:
        connection.execute(insert(Invoice.__table__), rows)
        ledger(connection, payments, credits, allocations)
        assert company_tallies(connection, "co", TODAY) == {c: tally(i, TODAY) for c, i in invoices.items()}
        assert company_tallies(connection, "co", TODAY, "C3") == {"C3": tally(invoices["C3"], TODAY)}


def test_a_recompute_scoped_to_the_customers_a_sync_touched_equals_a_full_one(engine):
    books(engine)
    assert health.recompute(engine, "co", NOW) == 3
    with engine.begin() as connection:  # an incremental sync reopens C1's paid invoice
        connection.execute(text("UPDATE invoices SET balance = total WHERE company_id = 'co' AND ref = '1'"))
    touched = {"C1"}  # what the sync's pages named (SyncSummary.customers_touched)
    later = NOW + timedelta(minutes=30)  # the same local day
    assert health.recompute(engine, "co", later, touched) == 1  # one customer assessed, not three
    stamps = {h.customer_ref: h.computed_at for h in health.read(engine, "co")}
    assert stamps["C1"] == later and stamps["C2"] == NOW  # C2 was left as it was
    scoped = view(engine)
    assert scoped["C1"] != [100, "good", "computed"]  # the reopened invoice counts against C1 now
    health.recompute(engine, "co", later)
    assert view(engine) == scoped  # the same scores a full recompute gives


def test_a_recompute_scoped_on_a_later_day_assesses_the_whole_company(engine):
    """Open invoices' days past due grew for every customer overnight, changed or not."""
    books(engine)
    assert health.recompute(engine, "co", NOW) == 3
    next_day = NOW + timedelta(days=1)
    assert health.recompute(engine, "co", next_day, {"C1"}) == 3
    assert {h.computed_at for h in health.read(engine, "co")} == {next_day}
    assert health.recompute(engine, "co", next_day + timedelta(hours=1), {"C1"}) == 1  # that day: scoped


def test_the_tally_is_not_compiled_by_postgresql(pg_engine):
    """With statistics, PostgreSQL estimated a 100k company's tally costly enough to JIT-compile
    it: ~1 s of compiling for a 0.5 s query, on every recompute (the daily job's too)."""
    with pg_engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL jit_above_cost = 0")  # any query would be compiled
        assert company_tallies(connection, "co", TODAY) == {}
        assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
