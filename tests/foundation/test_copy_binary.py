"""PostgreSQL pages go in by binary COPY only where it stores and refuses what text COPY does.

`binary_safe` decides per page from the stage's column types and the values' Python types;
a value the sync never writes (an int in a text column, an integer past its column's range,
a naive time) keeps the text COPY, so the row stored or the database error raised is the
same as before.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from store.copy_binary import binary_safe
from store.db import make_engine, upgrade
from store.upsert import upsert
from store.writes import INVOICES

VARCHAR, INT4, INT8, BOOLEAN, NUMERIC, DATE, TIMESTAMPTZ, TIMESTAMP = 1043, 23, 20, 16, 1700, 1082, 1184, 1114
AWARE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("types", "columns", "safe"),
    [
        ((VARCHAR, NUMERIC, DATE), (["a", None], [Decimal("1.5"), None], [date(2026, 1, 1), None]), True),
        ((BOOLEAN, TIMESTAMPTZ, INT8), ([True, False], [AWARE, None], [2**63 - 1, -(2**63)]), True),
        ((INT4,), ([None, None],), True),
        ((VARCHAR,), ([5],), False),
        ((INT8,), ([Decimal(5)],), False),
        ((INT8,), ([True],), False),
        ((INT4,), ([2**31],), False),
        ((INT8,), ([None, -(2**63) - 1],), False),
        ((NUMERIC,), ([5],), False),
        ((TIMESTAMPTZ,), ([AWARE, AWARE.replace(tzinfo=None)],), False),
        ((TIMESTAMP,), ([AWARE.replace(tzinfo=None)],), False),
    ],
    ids=[
        "text-numeric-date",
        "boolean-time-int8-limits",
        "all-null",
        "int-in-text",
        "decimal-in-int8",
        "bool-in-int8",
        "past-int4",
        "past-int8",
        "int-in-numeric",
        "naive-time",
        "timestamp-without-zone",
    ],
)
def test_binary_only_for_the_types_the_sync_writes(types, columns, safe):
    assert binary_safe(types, columns) is safe


def _upsert(connection, rows, *extra):
    columns = ("ref", "customer_ref", "total", "balance", *extra)
    upsert(connection, INVOICES, rows, ("company_id", "ref"), columns=columns, shared={"company_id": "acme"})


def test_a_value_binary_copy_would_refuse_is_stored_as_text_copy_stored_it(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    with engine.begin() as connection:
        _upsert(connection, [("A", 7, Decimal(1), Decimal(0))])  # an int where text is stored
        _upsert(connection, [("B", "C1", Decimal(2), Decimal(0))])
    with engine.connect() as connection:
        stored = connection.execute(select(INVOICES.c.ref, INVOICES.c.customer_ref, INVOICES.c.total)).all()
    assert sorted(stored) == [("A", "7", Decimal("1.0000")), ("B", "C1", Decimal("2.0000"))]
    engine.dispose()


def test_an_integer_past_its_column_is_still_the_databases_error(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    with pytest.raises(DBAPIError, match="out of range"), engine.begin() as connection:
        _upsert(connection, [("A", "C1", Decimal(1), Decimal(0), 2**63)], "seen_run")
    engine.dispose()
