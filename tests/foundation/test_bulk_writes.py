"""The store's set-based upsert on both backends: what a page leaves in the tables.

PostgreSQL upserts a page through COPY into a staging table and one INSERT ... SELECT;
a page naming a key twice goes through the driver's executemany instead (one statement
may not update a row twice). Either way the stored rows must be what sequential
INSERT ... ON CONFLICT DO UPDATE statements leave: the later duplicate wins, local
columns stay, a rolled-back page leaves nothing behind for the next one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from portal_rules.records import InvoiceRecord
from store.bulk import update_by_key
from store.db import make_engine, upgrade
from store.upsert import AlreadyStored, insert_new, upsert
from store.writes import ADJUSTMENTS, INVOICES, write_invoices

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _invoice(ref: str, balance: str, **changes) -> InvoiceRecord:
    fields = {
        "ref": ref,
        "customer_ref": "C1",
        "doc_number": f"D-{ref}",
        "issue_date": date(2026, 5, 1),
        "due_date": date(2026, 6, 1),
        "currency": "USD",
        "total": Decimal("100.00"),
        "balance": Decimal(balance),
        "source_sent": True,
        "updated_at": datetime(2026, 5, 2, 8, 30, 15, 250, tzinfo=timezone(timedelta(hours=-5))),
    } | changes
    return InvoiceRecord(**fields)


def _stored(engine) -> dict[str, tuple]:
    columns = (INVOICES.c.ref, INVOICES.c.balance, INVOICES.c.visible, INVOICES.c.sent_override)
    with engine.connect() as connection:
        return {row[0]: tuple(row[1:]) for row in connection.execute(select(*columns))}


def test_a_page_of_new_and_stored_invoices_keeps_local_columns(engine):
    with engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice(str(n), "10.00") for n in range(50)], now=NOW, run_id=1)
        connection.execute(
            update(INVOICES).where(INVOICES.c.ref.in_(["7", "31"])).values(sent_override=False)
        )
    with engine.begin() as connection:
        page = [_invoice(str(n), "20.00") for n in range(25, 75)]
        assert write_invoices(connection, "acme", page, now=NOW + timedelta(hours=1), run_id=2) == (50, 0)
    stored = _stored(engine)
    assert len(stored) == 75
    assert stored["7"] == (Decimal("10.0000"), True, False)  # not re-read: left as it was
    assert stored["30"] == (Decimal("20.0000"), True, None)  # re-read: synced columns overwritten
    assert stored["31"] == (Decimal("20.0000"), False, False)  # re-read: the mark-unsent stays and hides it
    with engine.connect() as connection:
        updated_at, synced_at, issued = connection.execute(
            select(INVOICES.c.source_updated_at, INVOICES.c.synced_at, INVOICES.c.issue_date).where(
                INVOICES.c.ref == "30"
            )
        ).one()
    assert updated_at == datetime(2026, 5, 2, 13, 30, 15, 250, tzinfo=UTC)
    assert synced_at == NOW + timedelta(hours=1)
    assert issued == date(2026, 5, 1)


def test_a_key_twice_in_one_page_leaves_the_later_row(engine):
    page = [_invoice("1", "5.00"), _invoice("2", "6.00"), _invoice("1", "0.00"), _invoice("1", "7.50")]
    with engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice("1", "0.00")], now=NOW, run_id=1)
        assert write_invoices(connection, "acme", page, now=NOW, run_id=2) == (4, 2)
    assert _stored(engine) == {"1": (Decimal("7.5000"), True, None), "2": (Decimal("6.0000"), True, None)}


def test_a_reopening_read_twice_in_one_page_is_one_adjustment(engine):
    """The later duplicate sees the balance the earlier one left, as sequential upserts do."""
    with engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice("1", "0.00")], now=NOW, run_id=1)
        page = [_invoice("1", "25.00"), _invoice("2", "6.00"), _invoice("1", "25.00")]
        assert write_invoices(connection, "acme", page, now=NOW, run_id=2) == (3, 1)
    with engine.connect() as connection:
        rows = connection.execute(select(ADJUSTMENTS.c.invoice_ref, ADJUSTMENTS.c.amount)).all()
    assert rows == [("1", Decimal("25.0000"))]


def test_two_pages_in_one_transaction_and_a_rolled_back_one(engine):
    with engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice("1", "1.00"), _invoice("2", "2.00")], now=NOW, run_id=1)
        write_invoices(connection, "acme", [_invoice("3", "3.00")], now=NOW, run_id=1)
    with pytest.raises(RuntimeError), engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice("4", "4.00")], now=NOW, run_id=2)
        raise RuntimeError("the page's transaction fails after its upsert")
    with engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice("5", "5.00")], now=NOW, run_id=3)
    assert sorted(_stored(engine)) == ["1", "2", "3", "5"]


def test_dict_rows_and_shared_values_bind_alike(engine):
    rows = [{"ref": "A", "customer_ref": "C1", "total": Decimal("1.23456"), "balance": Decimal(0)}]
    shared = {"company_id": "acme", "synced_at": NOW}
    with engine.begin() as connection:
        upsert(connection, INVOICES, rows, ("company_id", "ref"), shared=shared)
        upsert(
            connection,
            INVOICES,
            [("B", "C1", Decimal("-0.00005"), Decimal(1))],
            ("company_id", "ref"),
            columns=("ref", "customer_ref", "total", "balance"),
            shared=shared,
        )
    with engine.connect() as connection:
        stored = dict(connection.execute(select(INVOICES.c.ref, INVOICES.c.total)).all())
        currency = connection.scalar(select(INVOICES.c.currency).where(INVOICES.c.ref == "A"))
    assert stored == {"A": Decimal("1.2346"), "B": Decimal("-0.0000")}  # half-even, as the column rounds
    assert currency == "USD"  # a column the rows leave out gets its default


def test_float_money_is_refused(engine):
    with engine.begin() as connection, pytest.raises(TypeError, match="money must be Decimal"):
        write_invoices(connection, "acme", [_invoice("1", "1.00", total=0.1)], now=NOW)


def test_a_database_error_in_a_postgresql_page_is_sqlalchemys(pg_url):
    """The sync maps `DBAPIError` to a store failure; the COPY that PostgreSQL pages use must raise it."""
    engine = make_engine(pg_url)
    upgrade(engine)
    too_big = [("A", "C1", Decimal(10) ** 17, Decimal(0))]  # past NUMERIC(20,4)
    for write in (upsert, insert_new):  # a page written as new is COPied into the table itself
        with pytest.raises(DBAPIError, match="numeric field overflow"), engine.begin() as connection:
            write(
                connection,
                INVOICES,
                too_big,
                ("company_id", "ref"),
                columns=("ref", "customer_ref", "total", "balance"),
                shared={"company_id": "acme"},
            )
    with engine.begin() as connection:  # the pool hands out a usable connection afterwards
        write_invoices(connection, "acme", [_invoice("B", "1.00")], now=NOW)
    assert sorted(_stored(engine)) == ["B"]
    engine.dispose()


def test_new_invoices_go_in_unread_as_an_upsert_writes_them(engine):
    page = [_invoice(str(n), "10.00") for n in range(30)]
    with engine.begin() as connection:
        assert write_invoices(connection, "acme", page, now=NOW, run_id=1, new=True) == (30, 0)
    with engine.begin() as connection:
        write_invoices(connection, "globex", page, now=NOW, run_id=1)
    with engine.connect() as connection:
        columns = [c for c in INVOICES.c if c.name not in ("id", "company_id")]
        rows = {
            company: sorted(
                connection.execute(select(*columns).where(INVOICES.c.company_id == company)).all()
            )
            for company in ("acme", "globex")
        }
    assert rows["acme"] == rows["globex"]
    assert len(rows["acme"]) == 30


@pytest.mark.parametrize(
    "page",
    [
        [_invoice("40", "1.00"), _invoice("7", "0.00")],  # 7 is stored
        [_invoice("40", "1.00"), _invoice("41", "2.00"), _invoice("40", "3.00")],  # 40 twice
    ],
    ids=["a key stored", "a key twice"],
)
def test_a_page_written_as_new_refuses_a_stored_or_repeated_key(engine, page):
    with engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice(str(n), "5.00") for n in range(10)], now=NOW, run_id=1)
    before = _stored(engine)
    with pytest.raises(AlreadyStored, match="invoices"), engine.begin() as connection:
        write_invoices(connection, "acme", page, now=NOW, run_id=2, new=True)
    assert _stored(engine) == before  # the caller's transaction is rolled back: nothing changed


def test_new_rows_of_unusual_values_are_stored_as_an_upsert_stores_them(engine):
    """An int for a text column takes PostgreSQL's text COPY (binary would refuse it), either way."""
    columns = ("ref", "customer_ref", "doc_number", "total", "balance")
    for write, company in ((insert_new, "acme"), (upsert, "globex")):
        with engine.begin() as connection:
            write(
                connection,
                INVOICES,
                [("A", "C1", 7, Decimal("1.5"), Decimal(0))],
                ("company_id", "ref"),
                columns=columns,
                shared={"company_id": company},
            )
    with engine.connect() as connection:
        stored = connection.execute(
            select(INVOICES.c.company_id, INVOICES.c.doc_number, INVOICES.c.total).order_by(
                INVOICES.c.company_id
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        ("acme", "7", Decimal("1.5000")),
        ("globex", "7", Decimal("1.5000")),
    ]


def test_update_by_key_sets_only_the_given_rows_columns_with_their_types_binding(engine):
    """Money is scaled (SQLite) and UTC times converted as any write binds them; rows and
    columns not named stay as they were; no rows is no statement."""
    with engine.begin() as connection:
        write_invoices(connection, "acme", [_invoice(str(n), "10.00") for n in range(5)], now=NOW, run_id=1)
        ids = dict(connection.execute(select(INVOICES.c.ref, INVOICES.c.id)).all())
    later = datetime(2026, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as connection:
        update_by_key(
            connection,
            INVOICES,
            "id",
            ("balance", "synced_at"),
            [(ids["1"], Decimal("2.5"), later), (ids["3"], Decimal("0.00005"), later)],
        )
        update_by_key(connection, INVOICES, "id", ("balance",), [])
    stored = _stored(engine)
    assert stored["1"][0] == Decimal("2.5000") and stored["3"][0] == Decimal("0.0000")  # rounded half-even
    assert {ref: row[0] for ref, row in stored.items() if ref not in ("1", "3")} == {
        ref: Decimal("10.0000") for ref in ("0", "2", "4")
    }
    with engine.connect() as connection:
        synced = dict(connection.execute(select(INVOICES.c.ref, INVOICES.c.synced_at)).all())
    assert synced["1"] == synced["3"] == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert synced["0"] == NOW


def test_shared_values_store_what_binding_them_to_each_row_stores(engine):
    """SQLite writes the values every row shares into the statement: the rows must be the same."""
    companies = ["o'brien", "x'); DROP TABLE invoices; --", "Zürich ☃ ''"]
    if engine.dialect.name == "sqlite":  # PostgreSQL's text cannot hold NUL (requests with it are refused)
        companies.append("nul\x00inside")
    columns = ("ref", "customer_ref", "total", "balance")
    rows = [("A", "C1", Decimal("1.5"), Decimal(0)), ("B", "C2", Decimal(2), Decimal("0.5"))]
    for company in companies:
        shared = {"company_id": company, "synced_at": NOW, "seen_run": 2**31 - 1, "doc_number": None}
        bound = {**shared, "company_id": f"{company}/bound"}  # the same values, in every row
        with engine.begin() as connection:
            upsert(connection, INVOICES, rows, ("company_id", "ref"), columns=columns, shared=shared)
            upsert(
                connection,
                INVOICES,
                [(*row, *bound.values()) for row in rows],
                ("company_id", "ref"),
                columns=(*columns, *bound),
            )
        with engine.connect() as connection:
            found = connection.execute(
                select(INVOICES).where(INVOICES.c.company_id.in_([company, f"{company}/bound"]))
            ).all()
        stored: dict[str, list[dict]] = {}
        for row in found:
            values = row._asdict()
            del values["id"]
            stored.setdefault(values.pop("company_id"), []).append(values)
        assert stored[company] == stored[f"{company}/bound"]
        assert [(r["ref"], r["seen_run"], r["doc_number"]) for r in stored[company]] == [
            ("A", 2**31 - 1, None),
            ("B", 2**31 - 1, None),
        ]
