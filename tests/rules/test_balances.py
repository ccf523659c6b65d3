from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal_rules.balances import balance_due, company_today, is_past_due, past_due_amount

from .factories import day, invoice, utc

TODAY = day("2026-06-10")

OPEN_OVERDUE = invoice("I1", balance="100.10", due="2026-06-01")
OPEN_CURRENT = invoice("I2", balance="50.05", due="2026-06-30")
DUE_TODAY = invoice("I3", balance="20.00", due="2026-06-10")
PAID = invoice("I4", balance="0.00", total="80.00", due="2026-05-01")
UNSENT_OVERDUE = invoice("I5", balance="999.00", due="2026-05-01", sent=False)
MARKED_SENT = invoice("I6", balance="7.00", due="2026-05-01", sent=False, override=True)
VOIDED = invoice("I7", balance="0", total="0", voided=True)
NO_DUE_DATE = invoice("I8", balance="5.00", due=None)


@pytest.mark.parametrize(
    ("invoices", "customer_visible", "due", "past_due"),
    [
        ([], True, "0", "0"),
        ([OPEN_OVERDUE, OPEN_CURRENT], True, "150.15", "100.10"),
        ([DUE_TODAY], True, "20.00", "0"),
        ([PAID, OPEN_CURRENT], True, "50.05", "0"),
        ([UNSENT_OVERDUE, OPEN_CURRENT], True, "50.05", "0"),
        ([MARKED_SENT], True, "7.00", "7.00"),
        ([VOIDED, OPEN_OVERDUE], True, "100.10", "100.10"),
        ([NO_DUE_DATE], True, "5.00", "0"),
        ([OPEN_OVERDUE, OPEN_CURRENT], False, "0", "0"),
    ],
    ids=[
        "no-invoices",
        "overdue-and-current",
        "due-today-is-not-past-due",
        "paid-counts-nothing",
        "unsent-not-counted",
        "mark-sent-counted",
        "void-not-counted",
        "no-due-date-never-past-due",
        "hidden-customer-owes-nothing-visible",
    ],
)
def test_balances(invoices, customer_visible: bool, due: str, past_due: str) -> None:
    assert balance_due(invoices, customer_visible) == Decimal(due)
    assert past_due_amount(invoices, TODAY, customer_visible) == Decimal(past_due)
    assert is_past_due(invoices, TODAY, customer_visible) is (Decimal(past_due) > 0)


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        ("2026-06-10T03:30:00", "America/New_York", "2026-06-09"),
        ("2026-06-10T04:00:00", "America/New_York", "2026-06-10"),
        ("2026-06-09T14:00:00", "Australia/Sydney", "2026-06-10"),
        ("2026-06-10T00:00:00", "UTC", "2026-06-10"),
    ],
    ids=["ny-still-yesterday", "ny-midnight", "sydney-already-tomorrow", "utc"],
)
def test_company_today(now: str, tz: str, expected: str) -> None:
    assert company_today(utc(now), tz) == day(expected)


def test_company_today_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        company_today(datetime(2026, 6, 10, 12), "UTC")


def test_past_due_follows_the_company_date() -> None:
    # 01:00 UTC on the 2nd is still the 1st in New York: an invoice due on the 1st is not late.
    due_first = [invoice(due="2026-06-01")]
    late_utc = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)
    assert past_due_amount(due_first, company_today(late_utc, "America/New_York")) == 0
    assert past_due_amount(due_first, company_today(late_utc, "UTC")) == Decimal("100.00")


amounts = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("100000"), places=2)


@given(balances=st.lists(st.tuples(amounts, st.booleans()), max_size=30))
def test_balance_due_is_the_exact_decimal_sum_of_visible_balances(balances) -> None:
    invoices = [invoice(f"I{i}", balance=str(amount), sent=sent) for i, (amount, sent) in enumerate(balances)]
    total = balance_due(invoices)
    assert isinstance(total, Decimal)
    assert total == sum((amount for amount, sent in balances if sent), Decimal(0))
    past_due = past_due_amount(invoices, day("2026-12-31"))
    assert isinstance(past_due, Decimal)
    assert past_due == sum((amount for amount, sent in balances if sent and amount > 0), Decimal(0))
