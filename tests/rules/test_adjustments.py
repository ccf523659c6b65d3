from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal_rules.adjustments import Adjustment, detect_adjustment


def _d(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@pytest.mark.parametrize(
    ("previous", "new", "amount"),
    [
        ("0", "25.00", "25.00"),
        ("0.0000", "0.01", "0.01"),
        (None, "25.00", None),
        ("0", "0", None),
        ("40.00", "25.00", None),
        ("25.00", "0", None),
        ("25.00", "40.00", None),
        ("0", "-5.00", None),
    ],
    ids=[
        "paid-invoice-reopened",
        "stored-zero-with-scale-reopened-by-a-cent",
        "first-time-seen-is-not-an-adjustment",
        "still-paid",
        "partial-payment",
        "paid-off",
        "balance-grew-while-open",
        "negative-is-not-a-reopening",
    ],
)
def test_detect_adjustment(previous: str | None, new: str, amount: str | None) -> None:
    adjustment = detect_adjustment(_d(previous), Decimal(new))
    if amount is None:
        assert adjustment is None
    else:
        assert adjustment == Adjustment(Decimal(previous), Decimal(new), Decimal(amount))


@pytest.mark.parametrize(
    ("balances", "amounts"),
    [
        (["100", "0", "30", "30"], ["30"]),
        (["100", "0", "30", "0", "45"], ["30", "45"]),
        (["0", "0", "10", "5", "0", "0"], ["10"]),
        (["0"], []),
    ],
    ids=[
        "same-reopening-seen-by-two-syncs-recorded-once",
        "paid-again-and-reopened-again-recorded-twice",
        "partial-payment-after-reopening-is-not-another",
        "new-paid-invoice",
    ],
)
def test_adjustments_over_successive_syncs(balances: list[str], amounts: list[str]) -> None:
    # Each sync compares the stored balance with the new one, then stores the new one.
    stored: Decimal | None = None
    recorded = []
    for balance in map(Decimal, balances):
        adjustment = detect_adjustment(stored, balance)
        if adjustment is not None:
            recorded.append(adjustment.amount)
        stored = balance
    assert recorded == [Decimal(a) for a in amounts]


def test_float_balances_are_refused() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        detect_adjustment(Decimal(0), 12.5)  # type: ignore[arg-type]


@given(new=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e9"), places=4))
def test_a_reopening_amount_is_the_exact_new_balance(new: Decimal) -> None:
    adjustment = detect_adjustment(Decimal(0), new)
    assert adjustment is not None
    assert isinstance(adjustment.amount, Decimal)
    assert adjustment.amount == adjustment.new_balance == new
    assert detect_adjustment(new, new) is None
