"""The store on SQLite and PostgreSQL: migrations, exact money, UTC times, the public views."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from store.db import StoreNotMigrated, current_revision, head_revision, make_engine, require_migrated, upgrade
from store.tables import Company, Customer, Invoice, SyncRun

AMOUNTS = [
    Decimal("0.01"),
    Decimal("1234567.89"),
    Decimal("99999999999.9999"),
    Decimal("-42.5"),
    Decimal("0"),
]


def test_unmigrated_database_is_refused_with_what_to_run(store_url):
    engine = make_engine(store_url)
    with pytest.raises(StoreNotMigrated, match="run `arsync db upgrade` first"):
        require_migrated(engine)
    assert upgrade(engine) == (None, head_revision())
    require_migrated(engine)
    assert upgrade(engine) == (head_revision(), head_revision())  # idempotent
    engine.dispose()


def test_schema_has_every_table_and_view(engine):
    names = set(inspect(engine).get_table_names())
    assert {
        "companies",
        "connections",
        "customers",
        "contacts",
        "invoices",
        "adjustments_log",
        "sync_runs",
        "sync_cursors",
        "invitations",
        "outbox",
        "reminder_ledger",
    } <= names
    views = set(inspect(engine).get_view_names())
    assert {"portal_invoices", "portal_customers", "portal_accounts", "adjustments"} <= views
    assert current_revision(engine) == head_revision()


@pytest.mark.parametrize("amount", AMOUNTS, ids=str)
def test_money_round_trips_exactly(engine, amount):
    with Session(engine) as session:
        session.add(Invoice(company_id="c", ref="1", customer_ref="k", total=amount, balance=amount))
        session.commit()
    with Session(engine) as session:
        row = session.scalars(select(Invoice)).one()
    assert isinstance(row.total, Decimal)
    assert row.total == amount
    assert row.balance == amount


def test_money_refuses_float(engine):
    with Session(engine) as session, pytest.raises(Exception, match="money must be Decimal"):
        session.add(Invoice(company_id="c", ref="1", customer_ref="k", total=0.1, balance=Decimal(0)))
        session.commit()


def test_datetimes_come_back_aware_utc(engine):
    tokyo = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=9)))
    with Session(engine) as session:
        session.add(SyncRun(company_id="c", started_at=tokyo))
        session.commit()
    with Session(engine) as session:
        started = session.scalars(select(SyncRun.started_at)).one()
    assert started == tokyo
    assert started.tzinfo is not None and started.utcoffset() == timedelta(0)


def test_views_have_the_public_columns_and_sum_exactly(engine):
    with Session(engine) as session:
        session.add(Company(company_id="acme", name="Acme", timezone="America/New_York", kind="quickbooks"))
        session.add(Customer(company_id="acme", ref="C1", display_name="Café Müller"))
        for ref, balance, visible in [("1", "0.10", True), ("2", "0.20", True), ("3", "5.00", False)]:
            session.add(
                Invoice(
                    company_id="acme",
                    ref=ref,
                    customer_ref="C1",
                    doc_number=f"INV-{ref}",
                    issue_date=date(2026, 1, 1),
                    due_date=date(2026, 2, 1),
                    currency="USD",
                    total=Decimal(balance),
                    balance=Decimal(balance),
                    visible=visible,
                )
            )
        session.commit()
    with engine.connect() as connection:
        invoices = (
            connection.execute(text("SELECT * FROM portal_invoices ORDER BY invoice_ref")).mappings().all()
        )
        customers = connection.execute(text("SELECT * FROM portal_customers")).mappings().all()
        accounts = connection.execute(text("SELECT * FROM portal_accounts")).keys()
    assert list(invoices[0].keys()) == [
        "company_id",
        "customer_ref",
        "invoice_ref",
        "doc_number",
        "issue_date",
        "due_date",
        "currency",
        "total",
        "balance",
    ]
    assert [row["invoice_ref"] for row in invoices] == ["1", "2"]
    assert list(customers[0].keys()) == [
        "company_id",
        "customer_ref",
        "display_name",
        "balance_due",
        "timezone",
    ]
    assert Decimal(str(customers[0]["balance_due"])) == Decimal("0.30")
    assert customers[0]["timezone"] == "America/New_York"
    assert list(accounts) == ["company_id", "customer_ref", "email", "status", "eligible"]


def test_sqlite_runs_in_wal_mode(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_aware_now_is_required(engine):
    with Session(engine) as session, pytest.raises(Exception, match="naive datetime"):
        session.add(SyncRun(company_id="c", started_at=datetime(2026, 1, 1)))
        session.commit()
    assert datetime.now(UTC).tzinfo is UTC
