"""`store.binds`'s fast bind processors give exactly what the column types' own processors give.

The bulk writer replaces SQLAlchemy's per-value processors for booleans and SQLite's
DATE/DATETIME strings with one-call equivalents, and Money and UTCDateTime bring their own
(`process_bind_param` in one C call for the usual value); stored text or amounts that
differed by a character would break every comparison the store makes on them. Errors for
bad values stay the same.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Boolean, Date, DateTime
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from store.binds import bind_processor
from store.types import Money, UTCDateTime

DIALECTS = [sqlite.dialect(), postgresql.psycopg.dialect()]
ZONES = [UTC, timezone(timedelta(hours=9, minutes=30)), timezone(-timedelta(hours=8))]
IDS = ["sqlite", "postgresql"]


def _both(type_, dialect):
    impl = type_.dialect_impl(dialect)
    # a TypeDecorator's generic path: its process_bind_param, then its implementation's processor
    generic = TypeDecorator.bind_processor if isinstance(impl, TypeDecorator) else type(impl).bind_processor
    original = generic(impl, dialect) or (lambda value: value)
    return bind_processor(type_, dialect) or (lambda value: value), original


def _outcome(process, value):
    try:
        return process(value)
    except Exception as exc:  # noqa: BLE001 - the error type is the outcome compared
        return type(exc)


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@pytest.mark.parametrize("value", [True, False, None, 1, 0, 2, "yes", 1.0], ids=repr)
def test_booleans(dialect, value):
    fast, original = _both(Boolean(), dialect)
    assert _outcome(fast, value) == _outcome(original, value)


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@given(value=st.one_of(st.none(), st.dates(), st.datetimes(), st.text(max_size=3)))
def test_dates(dialect, value):
    fast, original = _both(Date(), dialect)
    assert _outcome(fast, value) == _outcome(original, value)


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@given(
    value=st.one_of(
        st.none(),
        st.dates(),
        st.datetimes(),
        st.datetimes(timezones=st.just(timezone(timedelta(hours=-5)))),
        st.integers(),
    )
)
def test_datetimes(dialect, value):
    fast, original = _both(DateTime(), dialect)
    assert _outcome(fast, value) == _outcome(original, value)


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@given(
    value=st.one_of(
        st.none(),
        st.datetimes(),
        st.datetimes(
            min_value=datetime(2, 1, 1),
            max_value=datetime(9998, 12, 30),
            timezones=st.sampled_from(
                [UTC, timezone(timedelta(hours=9, minutes=30)), timezone(-timedelta(hours=8))]
            ),
        ),
    )
)
def test_utc_datetimes(dialect, value):
    fast, original = _both(UTCDateTime(), dialect)
    assert _outcome(fast, value) == _outcome(original, value)


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@given(
    value=st.one_of(
        st.none(),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.decimals(min_value=-(10**15), max_value=10**15, places=6),
        st.integers(min_value=-(10**15), max_value=10**15),
        st.floats(allow_nan=False),
        st.text(max_size=3),
    )
)
def test_money(dialect, value):
    fast, original = _both(Money(), dialect)
    # compared as repr: 5 == Decimal(5), and a NaN is not equal to itself
    assert repr(_outcome(fast, value)) == repr(_outcome(original, value))


@pytest.mark.parametrize(
    ("amount", "stored"),
    [
        ("0.00005", 0),
        ("0.00015", 2),
        ("-1.23455", -12346),
        ("922337203685477.5807", 2**63 - 1),
        ("922337203685477.58065", 2**63 - 2),
    ],
    ids=["half-to-even-down", "half-to-even-up", "negative", "limit", "just-under-limit"],
)
def test_money_is_ten_thousandths_rounded_half_even_on_sqlite(amount, stored):
    fast, _ = _both(Money(), sqlite.dialect())
    assert fast(Decimal(amount)) == stored


def test_sqlite_text_is_what_sqlalchemy_writes():
    fast, _ = _both(UTCDateTime(), sqlite.dialect())
    assert fast(datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0005-01-02 03:04:05.000000"
    fast, _ = _both(Date(), sqlite.dialect())
    assert fast(datetime(2026, 1, 2, 3, 4)) == "2026-01-02" == fast(date(2026, 1, 2))


@pytest.mark.parametrize("type_", [Boolean(), Date(), DateTime()], ids=["boolean", "date", "datetime"])
def test_the_fast_processors_are_in_use_on_sqlite(type_):
    """Each one checks itself against the original at build time and steps aside on a mismatch."""
    dialect = sqlite.dialect()
    assert bind_processor(type_, dialect).__module__ == "store.binds"


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@pytest.mark.parametrize("type_", [Money(), UTCDateTime()], ids=["money", "utc-datetime"])
def test_the_types_own_fast_processors_are_in_use(dialect, type_):
    assert bind_processor(type_, dialect).__qualname__.startswith(f"{type(type_).__name__}.bind_processor.")


# A whole column at once (`many`): the same values, or None to send it value by value.
COLUMNS = [
    (Boolean(), st.one_of(st.booleans(), st.none())),
    (Boolean(), st.one_of(st.booleans(), st.integers(-1, 2), st.just("yes"))),
    (UTCDateTime(), st.datetimes(timezones=st.just(UTC))),
    (UTCDateTime(), st.one_of(st.datetimes(timezones=st.sampled_from(ZONES)), st.none())),
    (Money(), st.decimals(min_value=-(10**15), max_value=10**15, places=6)),
    (Money(), st.one_of(st.decimals(allow_nan=True), st.integers(-(10**15), 10**15), st.none())),
]
COLUMN_IDS = [
    "booleans", "booleans-mixed", "utc", "utc-mixed", "money", "money-mixed",
]  # fmt: skip


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@pytest.mark.parametrize(("type_", "values"), COLUMNS, ids=COLUMN_IDS)
@given(data=st.data())
def test_a_column_at_once_is_each_value_processed(dialect, type_, values, data):
    fast, _ = _both(type_, dialect)
    column = data.draw(st.lists(values, max_size=20))
    done = repr(_outcome(fast.many, column))
    if done != repr(None):  # None: the column goes value by value
        assert done == repr(_outcome(lambda vs: [fast(v) for v in vs], column))


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@pytest.mark.parametrize(
    ("type_", "column"),
    [
        (Money(), [Decimal("1.00005"), Decimal("-2.5"), Decimal(0)]),
        (UTCDateTime(), [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]),
        (Boolean(), [True, False, True]),
    ],
    ids=["money", "utc-datetime", "boolean"],
)
def test_the_usual_columns_are_processed_at_once(dialect, type_, column):
    """What a sync writes (exact amounts, UTC times, flags) takes the column path."""
    fast, _ = _both(type_, dialect)
    assert fast.many(column) == [fast(value) for value in column]


@given(column=st.lists(st.one_of(st.dates(), st.datetimes(), st.none()), max_size=20))
def test_a_date_column_at_once_is_each_value_processed_on_sqlite(column):
    fast, _ = _both(Date(), sqlite.dialect())
    done = fast.many(column)
    if done is not None:  # None: the column goes value by value
        assert done == [fast(v) for v in column]


def test_a_usual_date_column_is_processed_at_once_on_sqlite():
    """Invoice and payment dates (SQLite stores DATE as text) take the column path."""
    fast, _ = _both(Date(), sqlite.dialect())
    column = [date(2026, 12, 4), date(1, 1, 1), date(9999, 12, 31)]
    assert fast.many(column) == ["2026-12-04", "0001-01-01", "9999-12-31"] == [fast(v) for v in column]


@pytest.mark.parametrize(
    "column",
    [
        [datetime(2026, 11, 3, 18, 22, 31, tzinfo=UTC), datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)],
        [
            datetime(2026, 11, 3, 18, 22, 31, 314000, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ],
        [datetime(2026, 11, 3, 18, 22, 31, 10, tzinfo=UTC), datetime(2026, 11, 3, 18, 22, 32, tzinfo=UTC)],
    ],
    ids=["none-with-microseconds", "all-with-microseconds", "some-with-microseconds"],
)
def test_sqlite_utc_text_for_a_column_is_sqlalchemys(column):
    """QuickBooks' times have no fractions of a second, Xero's have milliseconds: the column's
    text is what SQLAlchemy's own DATETIME processor writes for each."""
    original = DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    fast, _ = _both(UTCDateTime(), sqlite.dialect())
    assert fast.many(column) == [original(value.replace(tzinfo=None)) for value in column]
