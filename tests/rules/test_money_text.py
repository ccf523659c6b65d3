"""Money as JSON text: two places, more only when an amount has them; never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal_rules.money import decimal_text


@pytest.mark.parametrize(
    ("stored", "text"),
    [
        ("123.4000", "123.40"),  # the store's four places, as SQLite and PostgreSQL return them
        ("0", "0.00"),  # a sum of nothing
        ("-0.0000", "0.00"),  # a zero negated: no sign
        ("-0", "0.00"),
        ("-50.5000", "-50.50"),
        ("0.1250", "0.125"),  # places beyond cents are kept, trailing zeros are not
        ("1234567.8912", "1234567.8912"),
        ("1E+2", "100.00"),  # never exponent notation
        ("99999999999999.9999", "99999999999999.9999"),  # NUMERIC(20,4)'s largest
    ],
)
def test_decimal_text(stored: str, text: str) -> None:
    assert decimal_text(Decimal(stored)) == text
