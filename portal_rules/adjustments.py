"""Adjustments: an invoice that was paid off (balance 0) and has a balance again.

Typically a refund, or a payment removed in the accounting system. The sync compares the
stored balance with the new one before overwriting it; since the new balance is then
stored, the next sync sees a positive stored balance and the same reopening is never
recorded twice, while a payment back to 0 followed by another reopening is recorded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One `adjustments` row, less what the caller adds (company, invoice, detected_at)."""

    previous_balance: Decimal
    new_balance: Decimal
    amount: Decimal  # equal to the new balance


def detect_adjustment(previous_balance: Decimal | None, new_balance: Decimal) -> Adjustment | None:
    """The adjustment a sync records for one invoice, or None.

    `previous_balance` is the stored balance (None: the invoice is new, never an
    adjustment). Compare against the stored value read in the same transaction as the
    write, so two workers cannot both see the old 0.
    """
    for value in (previous_balance, new_balance):
        if value is not None and not isinstance(value, Decimal):
            raise TypeError(f"balances must be Decimal, got {type(value).__name__}")
    if previous_balance is None or previous_balance != ZERO or new_balance <= ZERO:
        return None
    return Adjustment(previous_balance=previous_balance, new_balance=new_balance, amount=new_balance)
