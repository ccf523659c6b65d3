"""The planner's statistics after a full pull (store.statistics): analyzed when missing or
stale, left alone otherwise, and what they change for the health tally's plan."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine, insert, text

from store.db import make_engine, upgrade
from store.health_tally import _sql
from store.statistics import refresh_statistics
from store.tables import Company, Invoice

TODAY = date(2026, 6, 30)


def add_invoices(engine: Engine, start: int, count: int) -> None:
    with engine.begin() as connection:
        if start == 0:
            company = {"company_id": "co", "name": "Co", "timezone": "UTC", "kind": "x"}
            connection.execute(insert(Company.__table__), [company])
        connection.execute(
            insert(Invoice.__table__),
            [
                {
                    "company_id": "co",
                    "ref": str(n),
                    "customer_ref": f"C{n % 50}",
                    "currency": "USD",
                    "source_sent": True,
                    "total": Decimal("100"),
                    "balance": Decimal(n % 2 * 100),
                    "due_date": TODAY - timedelta(days=n % 300),
                }
                for n in range(start, start + count)
            ],
        )


def tally_plan(engine: Engine) -> str:
    """How the health tally reads the company's invoices (its plan's first step)."""
    with engine.connect() as connection:
        plan = connection.execute(
            text("EXPLAIN QUERY PLAN " + _sql("sqlite", False)),
            {"company": "co", "start": str(TODAY - timedelta(days=365)), "today": str(TODAY)},
        ).all()
    return next(row[3] for row in plan if " i " in f"{row[3]} ")


def test_a_store_without_statistics_is_analyzed_once_and_again_when_it_has_doubled(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    add_invoices(engine, 0, 2000)
    assert tally_plan(engine).startswith("SEARCH i USING INDEX")  # no statistics: company_id looks selective

    assert refresh_statistics(engine) is True
    assert tally_plan(engine).startswith("SCAN i")  # one company: reading the table beats the index
    assert refresh_statistics(engine) is False  # fresh: nothing to do

    add_invoices(engine, 2000, 1000)  # 3000 of 2000 analyzed: within a factor of two
    assert refresh_statistics(engine) is False
    add_invoices(engine, 3000, 2000)  # 5000: more than doubled
    assert refresh_statistics(engine) is True
    with engine.connect() as connection:
        stats = connection.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'invoices'")).scalars()
        assert {stat.split()[0] for stat in stats} == {"5000"}
    engine.dispose()


def test_postgresql_is_left_to_its_autovacuum(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    assert refresh_statistics(engine) is False
    engine.dispose()
