"""Whether a page's values go into PostgreSQL by binary COPY exactly as by text COPY.

A binary COPY took half the client CPU of a text one (which formats every value and has
the server parse it back), but its dumpers are chosen by the column's type, not the
value's: a value of another Python type, or an integer out of range, fails in the client
instead of the server (a TypeError, not the database error a text COPY raises), and an
int in a text column would be refused where text COPY stores its digits. So binary is
used only for columns whose values are all of the types the sync writes; anything else
keeps the text COPY and its behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter

_NONE = type(None)
_TIMESTAMPTZ = 1184
_INTEGER_RANGES = {21: 2**15, 23: 2**31, 20: 2**63}  # int2, int4, int8: -limit <= value < limit
# type oid -> the Python types whose binary dump is that of their text (None is NULL in both)
_EXACT: dict[int, frozenset[type]] = {
    25: frozenset({str, _NONE}),  # text
    1043: frozenset({str, _NONE}),  # varchar
    16: frozenset({bool, _NONE}),  # boolean
    1700: frozenset({Decimal, _NONE}),  # numeric
    1082: frozenset({date, _NONE}),  # date
    _TIMESTAMPTZ: frozenset({datetime, _NONE}),  # aware datetimes only (checked below)
    **{oid: frozenset({int, _NONE}) for oid in _INTEGER_RANGES},
}


def binary_safe(types: Sequence[int], columns: Sequence[Sequence[object]]) -> bool:
    """Whether every column's values (in the stage's `types`) dump in binary as they would in text."""
    for oid, values in zip(types, columns, strict=True):
        kinds = set(map(type, values))
        if not kinds <= _EXACT.get(oid, frozenset()):
            return False
        present = [value for value in values if value is not None] if _NONE in kinds else values
        if not present:
            continue
        limit = _INTEGER_RANGES.get(oid)
        if limit is not None and not -limit <= min(present) <= max(present) < limit:
            return False
        if oid == _TIMESTAMPTZ and None in set(map(attrgetter("tzinfo"), present)):
            return False
    return True
