"""Column types that behave the same on SQLite and PostgreSQL.

Money is exact: NUMERIC(20,4) on PostgreSQL; on SQLite, which has no decimal type and
would store REAL, a 64-bit integer of ten-thousandths (exact up to 922 trillion, and
summable exactly in SQL). Datetimes are stored as UTC and always come back tz-aware.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import compress, repeat
from operator import attrgetter, is_, not_
from typing import Any

import msgspec
from sqlalchemy import BigInteger, DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_SCALE = 4
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_FACTOR = 10**MONEY_SCALE
_FACTOR_DECIMAL = Decimal(_FACTOR)
# The largest amount both backends hold: SQLite keeps ten-thousandths in a signed 64-bit
# integer (PostgreSQL's NUMERIC(20,4) would go to 10^16). One limit, the same everywhere.
MONEY_LIMIT = Decimal(2**63 - 1).scaleb(-MONEY_SCALE)


class Money(TypeDecorator):
    """An exact decimal amount with four places."""

    impl = Numeric(20, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect):
        if value is None:
            return None
        exact = to_money(value)
        return int(exact * _FACTOR) if dialect.name == "sqlite" else exact

    def bind_processor(self, dialect: Dialect):
        """`process_bind_param`, in one C call for a plain Decimal (nearly every amount written).

        A sync binds half a million amounts for 100k invoices; the generic path's checks and
        calls per value cost more than the database's own work on them.
        """
        general = super().bind_processor(dialect)
        if self.impl_instance.bind_processor(dialect) is not None:
            return general
        if dialect.name == "sqlite":

            def process(value: Any):
                if value.__class__ is Decimal:  # to_money, scaled: the same operations
                    return int(value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN) * _FACTOR)
                return general(value)

            def many(values: Sequence[Any]) -> list | None:
                if not all_exactly(Decimal, values):
                    return None
                return list(map(int, map(_FACTOR_DECIMAL.__mul__, _quantized(values))))

        else:

            def process(value: Any):
                if value.__class__ is Decimal:
                    return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
                return general(value)

            def many(values: Sequence[Any]) -> list | None:
                return list(_quantized(values)) if all_exactly(Decimal, values) else None

        return batched(process, many)

    def process_result_value(self, value, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MONEY_SCALE)
        return Decimal(value).quantize(_QUANTUM)


def to_money(value: Decimal | int) -> Decimal:
    """`value` as the store keeps it: four places, rounded half-even; a float is refused.

    Compare against stored amounts only after this, or an amount the column rounds away
    (0.00001 is stored as 0) looks like a change on every sync.
    """
    if isinstance(value, float):
        raise TypeError("money must be Decimal, not float")
    return Decimal(value).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def fits_money(value: Decimal) -> bool:
    """Whether the store can hold `value` (after rounding to four places)."""
    # The limit has four places and rounding is monotone: anything within it still fits
    # once rounded, so only values just beyond it need the exact (rounding) check; values a
    # unit or more beyond cannot round back in (and would overflow `quantize`'s precision).
    if abs(value) <= MONEY_LIMIT:
        return True
    return abs(value) < MONEY_LIMIT + 1 and abs(to_money(value)) <= MONEY_LIMIT


def kept_exactly(value: Decimal) -> bool:
    """Whether the store keeps `value` as it is: no more than four decimal places of value
    (trailing zeros aside). A fifth would be rounded away on write."""
    try:
        return value == value.quantize(_QUANTUM)
    except ArithmeticError:  # beyond quantize's precision: `fits_money` refuses it
        return False


def all_kept_exactly(values: Iterable[Decimal]) -> bool:
    """`kept_exactly` of every value, if this says so (True): one exact sum, whose exponent is
    the smallest of its terms', in C. False may be trailing zeros (`1.50000`): ask each."""
    with localcontext(prec=80):  # exact for any page of amounts within `MONEY_LIMIT`
        return sum(values, Decimal(0)).as_tuple().exponent >= -MONEY_SCALE


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored in UTC (naive UTC on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect):
        """`process_bind_param` (and SQLite's text), in one C call for a datetime already in UTC.

        Normalizers give every time in UTC, so that is nearly every value a sync writes.
        """
        general = super().bind_processor(dialect)
        inner = self.impl_instance.bind_processor(dialect)
        if inner is None:

            def process(value: Any):
                # astimezone to the zone it is in already returns the value itself
                return value if value.__class__ is datetime and value.tzinfo is UTC else general(value)

            return batched(process, lambda values: list(values) if _utc_times(values) else None)
        if dialect.name != "sqlite" or not _is_sqlite_text(general):
            return general

        def text(value: Any):
            if value.__class__ is datetime and value.tzinfo is UTC:
                return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"
            return general(value)

        def many(values: Sequence[Any]) -> list | None:
            return sqlite_utc_texts(values) if _utc_times(values) else None

        return batched(text, many)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def sqlite_utc_texts(values: Sequence[datetime]) -> list[str]:
    """UTC times as SQLite's DATETIME text ("2026-12-04 21:42:07.000000"), a column at once.

    `datetime.isoformat` is ~1 µs a value (a 100k-invoice sync writes ~200k times, a
    fifth of its bind processing); msgspec writes the whole column as RFC 3339 in a C loop
    ("2026-12-04T21:42:07Z", or "...07.123456Z" with microseconds, always six digits), and
    the text needs only its "T" and "Z" replaced (nothing else in a list of times holds
    either) and ".000000" added where a time has no microseconds.
    """
    micros = list(map(_microsecond, values))
    some = any(micros)
    encoded = msgspec.json.encode(values).replace(b"T", b" ")
    texts = _TEXTS.decode(encoded.replace(b'Z"', b'"' if some else b'.000000"'))
    if some:  # Xero's times have milliseconds, all but one in a thousand
        for whole in compress(range(len(texts)), map(not_, micros)):
            texts[whole] += ".000000"
    return texts


def date_texts(values: Sequence[date]) -> list[str]:
    """Dates as their isoformat text, a column at once: msgspec writes a date exactly as
    `date.isoformat` does, in one C loop (~7x faster than a call per value)."""
    return _TEXTS.decode(msgspec.json.encode(values))


_TEXTS = msgspec.json.Decoder(list[str])
_microsecond = attrgetter("microsecond")


def batched(process: Callable[[Any], Any], many: Callable[[Sequence[Any]], list | None]):
    """`process`, carrying `many`: a whole column's values processed in C-level maps, or None
    when the column holds a value that needs `process`'s general path (then each value goes
    through `process`). Both give the same results; the bulk writer uses `many` for columns,
    which saves a Python call per value (half a million amounts in a 100k-invoice sync)."""
    process.many = many  # type: ignore[attr-defined]
    return process


def all_exactly(kind: type, values: Sequence[Any]) -> bool:
    """Whether every value is exactly of type `kind` (not a subclass), checked in C."""
    return all(map(is_, map(type, values), repeat(kind)))


def _quantized(values: Sequence[Decimal]):
    return map(Decimal.quantize, values, repeat(_QUANTUM), repeat(ROUND_HALF_EVEN))


_tzinfo = attrgetter("tzinfo")


def _utc_times(values: Sequence[Any]) -> bool:
    return all_exactly(datetime, values) and all(map(is_, map(_tzinfo, values), repeat(UTC)))


def _is_sqlite_text(general) -> bool:
    """Whether SQLite's DATETIME stores these times as isoformat text (a custom storage format would not)."""
    probe = datetime(2026, 12, 31, 23, 59, 58, 7, tzinfo=UTC)
    return general(probe) == probe.isoformat(" ", "microseconds")[:-6] and general(None) is None


def money_sql(column: str, dialect_name: str) -> str:
    """SQL presenting a stored money column as a number (used by the public views)."""
    if dialect_name == "sqlite":
        return f"({column} / {float(_FACTOR)!r})"
    return column
