"""Money as text for JSON: the portal API's answers and `arsync statement --json` alike.

A decimal string, never a float: two places ("123.40", "0.00"), more only when the amount's
further places are not zeros (the store keeps four: "0.1250" is "0.125").
"""

from __future__ import annotations

from decimal import Decimal

CENTS = Decimal("0.01")


def decimal_text(value: Decimal) -> str:
    """`Decimal("123.4000")` as "123.40", `Decimal("0")` as "0.00", "0.1250" as "0.125".

    A zero is "0.00" whatever its sign: `-Decimal("0.00")` (a zero amount negated, a credit
    of nothing) would print "-0.00", which a portal shows as money owed back."""
    if value.is_zero():
        value = abs(value)
    cents = value.quantize(CENTS)
    return str(cents) if cents == value else str(value.normalize())
