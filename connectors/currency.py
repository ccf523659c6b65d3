"""A record's currency as both APIs name it: an ISO 4217 code, three capital letters.

Balances, aging and health add amounts up per currency, so a value that is no code ("5",
"US Dollar") would make a currency of its own in the portal; such a record is quarantined.
"""

from __future__ import annotations


def is_currency_code(value: str) -> bool:
    """Three ASCII capital letters, as "USD" or "EUR"."""
    return len(value) == 3 and value.isascii() and value.isalpha() and value.isupper()
