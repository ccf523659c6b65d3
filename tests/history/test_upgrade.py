"""A populated first-release (0001) database upgrades to the account-history schema intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alembic import command
from sqlalchemy import insert, inspect, text

from store.db import current_revision, head_revision, make_engine, upgrade
from store.tables import AccessRequest, Invitation
from tests.foundation.schema import migrate

FIRST_RELEASE = [
    "INSERT INTO companies (company_id, name, timezone, kind) VALUES ('acme', 'Acme', 'UTC', 'xero')",
    "INSERT INTO customers (company_id, ref, display_name, active, deleted, portal_visible,"
    " reminders_paused) VALUES ('acme', 'C1', 'Zoë', {t}, {f}, {t}, {f})",
    "INSERT INTO invoices (company_id, ref, customer_ref, doc_number, issue_date, due_date, currency,"
    " total, balance, source_sent, voided, deleted, draft, visible) VALUES"
    " ('acme', 'I1', 'C1', 'INV-1', '2026-01-05', '2026-02-04', 'USD', {total}, {balance},"
    " {t}, {f}, {f}, {f}, {t})",
]


def test_first_release_database_upgrades_with_its_data(store_url):
    engine = make_engine(store_url)
    migrate(engine, command.upgrade, "0001")
    sqlite = engine.dialect.name == "sqlite"
    values = {
        "t": "1" if sqlite else "TRUE",
        "f": "0" if sqlite else "FALSE",
        # SQLite keeps money as ten-thousandths in an integer; PostgreSQL as NUMERIC.
        "total": "1234567" if sqlite else "123.4567",
        "balance": "500000" if sqlite else "50",
    }
    with engine.begin() as connection:
        for statement in FIRST_RELEASE:
            connection.execute(text(statement.format(**values)))

    assert upgrade(engine) == ("0001", head_revision())
    assert current_revision(engine) == head_revision()
    assert {"payments", "credits", "allocations"} <= set(inspect(engine).get_table_names())
    assert {"portal_payments", "portal_credits", "portal_statement"} <= set(inspect(engine).get_view_names())
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT kind, ref, amount, running_balance FROM portal_statement WHERE company_id = 'acme'")
        ).all()
        due = connection.scalar(text("SELECT balance_due FROM portal_customers WHERE customer_ref = 'C1'"))
        payments = connection.scalar(text("SELECT COUNT(*) FROM portal_payments"))
    assert [(k, r, Decimal(str(a)), Decimal(str(b))) for k, r, a, b in rows] == [
        ("invoice", "I1", Decimal("123.4567"), Decimal("123.4567"))
    ]
    assert Decimal(str(due)) == Decimal(50)
    assert payments == 0
    engine.dispose()


def test_waiting_access_requests_learn_the_invitations_issued_before_them(store_url):
    """0015: "issued since the request" became an id; requests still waiting when the store
    upgrades get the newest invitation of their time, so an older link is not taken as an
    answer (and a newer one still is)."""
    engine = make_engine(store_url)
    migrate(engine, command.upgrade, "0014_requested_invitations")
    day = datetime(2026, 11, 20, 12, tzinfo=UTC)
    invitation = {"company_id": "acme", "customer_ref": "C1", "email": "ap@x.example", "accepted_at": None}
    request = {"company_id": "acme", "email": "ap@x.example", "invite_ref": "C1", "handled_at": None}
    with engine.begin() as connection:
        connection.execute(
            insert(Invitation.__table__),
            [
                {**invitation, "token_hash": "a", "created_at": day, "expires_at": day + timedelta(days=14)},
                {
                    **invitation,
                    "token_hash": "b",
                    "created_at": day + timedelta(hours=2),
                    "expires_at": day + timedelta(days=14),
                },
            ],
        )
        connection.execute(
            insert(AccessRequest.__table__),
            [
                {**request, "requested_at": day - timedelta(hours=1)},
                {**request, "requested_at": day + timedelta(hours=1)},
                {**request, "requested_at": day + timedelta(hours=3), "handled_at": day},
            ],
        )
    upgrade(engine)
    with engine.connect() as connection:
        newest = connection.execute(
            text("SELECT requested_at, newest_invitation_id FROM access_requests ORDER BY id")
        ).all()
        first, second = connection.scalars(text("SELECT id FROM invitations ORDER BY id")).all()
    assert [n for _, n in newest] == [0, first, None]
    assert second > first
    engine.dispose()
