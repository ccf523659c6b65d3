"""Customer health (SPEC section 10): the score's boundaries as tables, the clock passed in."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_rules.health import Band, HealthInvoice, assess, band_of, days_late

TODAY = date(2026, 6, 30)


def paid(due_days_ago: int, late: int = 0, total: str = "100.00", *, dated: bool = True) -> HealthInvoice:
    """An invoice due `due_days_ago` days before TODAY, cleared `late` days after its due date."""
    due = TODAY - timedelta(days=due_days_ago)
    return HealthInvoice(due, Decimal(total), Decimal(0), due + timedelta(days=late) if dated else None)


def open_(due_days_ago: int, total: str = "100.00", balance: str | None = None) -> HealthInvoice:
    due = TODAY - timedelta(days=due_days_ago)
    return HealthInvoice(due, Decimal(total), Decimal(balance or total))


ON_TIME = [paid(300 - 30 * i, late=-i) for i in range(10)]


@pytest.mark.parametrize(
    ("invoices", "low", "high", "band"),
    [
        (ON_TIME, 100, 100, Band.GOOD),
        ([*ON_TIME, open_(0)], 100, 100, Band.GOOD),
        ([paid(100, late=2) for _ in range(5)], 70, 89, Band.GOOD),
        ([*ON_TIME[:9], paid(40, late=12)], 90, 100, Band.GOOD),
        ([*ON_TIME[:9], open_(12)], 90, 100, Band.GOOD),
        ([paid(200, late=61) for _ in range(4)], 0, 39, Band.POOR),
        ([paid(200, late=0), paid(200, late=130)], 0, 39, Band.POOR),
        ([open_(61), open_(62), open_(90)], 0, 39, Band.POOR),
        ([paid(300, late=240), paid(10)], 0, 39, Band.POOR),
        ([paid(200, late=0, total="10000"), paid(200, late=130, total="1")], 0, 39, Band.POOR),
        ([paid(200, late=0, total="1"), paid(200, late=130, total="10000")], 0, 39, Band.POOR),
        ([paid(100, late=30), paid(100, late=30)], 40, 69, Band.FAIR),
        ([paid(100, late=0, total="0"), paid(100, late=0, total="0")], 100, 100, Band.GOOD),
        ([paid(100, dated=False)], 100, 100, Band.GOOD),
    ],
    ids=[
        "all-paid-on-or-before-due",
        "open-due-today-is-not-late",
        "always-two-days-late",
        "one-of-ten-12-days-late",
        "one-open-12-days-past-due",
        "all-61-days-late",
        "on-average-65-days-late",
        "open-invoices-over-60-days-past-due",
        "one-very-late-one-on-time",
        "late-small-invoice-counts-by-invoice",
        "late-large-invoice-counts-by-amount",
        "a-month-late-is-fair",
        "zero-totals-weighted-by-invoice",
        "paid-without-date-counts-as-on-time",
    ],
)
def test_score_boundaries(invoices, low: int, high: int, band: Band) -> None:
    health = assess(invoices, TODAY)
    assert health.score is not None and low <= health.score <= high, health
    assert health.band is band


@pytest.mark.parametrize(
    ("invoices", "reasons"),
    [
        (
            [*ON_TIME[:9], paid(40, late=12), open_(12)],
            "paid 9 of 11 invoices on time; 1 paid 12 days late; 1 open invoice 12 days past due; "
            "by invoice: 2.2 days late on average, 18.2% late",
        ),
        (ON_TIME, "paid 10 of 10 invoices on time"),
        (  # SPEC §10's own example: ten invoices, nine paid on time, one open
            [*ON_TIME[:9], open_(12)],
            "paid 9 of 10 invoices on time; 1 open invoice 12 days past due; "
            "by invoice: 1.2 days late on average, 10% late",
        ),
        (  # the README's worked example (score 82)
            [
                HealthInvoice(date(2026, 3, 31), Decimal(1000), Decimal(0), date(2026, 3, 28)),
                HealthInvoice(date(2026, 4, 30), Decimal(1000), Decimal(0), date(2026, 5, 10)),
                HealthInvoice(date(2026, 5, 31), Decimal(2000), Decimal(0), date(2026, 5, 31)),
                HealthInvoice(date(2026, 6, 10), Decimal(500), Decimal(500)),
            ],
            "paid 2 of 4 invoices on time; 1 paid 10 days late; 1 open invoice 20 days past due; "
            "by invoice: 7.5 days late on average, 50% late",
        ),
        (
            [paid(100, late=10), paid(100, late=20), open_(5), open_(0), open_(1, total="50")],
            "paid 0 of 5 invoices on time; 2 paid late by 15 days on average; "
            "2 open invoices 1 to 5 days past due; 1 open invoice due today; "
            "by amount: 7.9 days late on average, 77.8% late",
        ),
        (
            [paid(10, dated=False)],
            "paid 1 of 1 invoice on time; 1 paid invoice without a payment date counted as on time",
        ),
        ([open_(1)], "1 open invoice 1 day past due; by invoice: 1 day late on average, 100% late"),
        (
            [paid(30, late=1), paid(30, late=1)],
            "paid 0 of 2 invoices on time; 2 paid late by 1 day on average; "
            "by invoice: 1 day late on average, 100% late",
        ),
    ],
    ids=[
        "nine-on-time-one-late-one-open",
        "all-on-time",
        "spec-example",
        "readme-worked-example",
        "mixed",
        "undated",
        "one-day",
        "one-day-each",
    ],
)
def test_reasons_in_words(invoices, reasons: str) -> None:
    assert assess(invoices, TODAY).reasons == reasons


@pytest.mark.parametrize(
    ("invoices", "expected"),
    [
        ([], None),
        ([paid(365)], None),
        ([open_(-1)], None),
        ([paid(364)], 100),
        ([open_(0)], 100),
    ],
    ids=[
        "no-invoices",
        "due-366-days-ago-is-outside",
        "not-yet-due-is-outside",
        "due-365-days-ago",
        "due-today",
    ],
)
def test_window_is_the_last_365_days(invoices, expected: int | None) -> None:
    health = assess(invoices, TODAY)
    assert health.score == expected
    if expected is None:
        assert health.band is Band.UNKNOWN
        assert health.reasons == "no visible invoice due in the last 365 days"


@pytest.mark.parametrize(
    ("invoice", "days"),
    [
        (paid(30, late=-5), 0),
        (paid(30, late=7), 7),
        (paid(30, late=90), 30),  # cleared "after today" (clock skew): never later than today
        (paid(30, dated=False), 0),
        (open_(30), 30),
        (open_(30, balance="1.00"), 30),
    ],
    ids=["early", "late", "clamped-to-today", "undated", "open", "partly-paid-is-open"],
)
def test_days_late(invoice: HealthInvoice, days: int) -> None:
    assert days_late(invoice, TODAY) == days


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (None, Band.UNKNOWN),
        (0, Band.POOR),
        (39, Band.POOR),
        (40, Band.FAIR),
        (69, Band.FAIR),
        (70, Band.GOOD),
        (100, Band.GOOD),
    ],
    ids=["none", "0", "39", "40", "69", "70", "100"],
)
def test_bands(score: int | None, band: Band) -> None:
    assert band_of(score) is band


@pytest.mark.parametrize("score", [-1, 101], ids=["below-0", "above-100"])
def test_band_refuses_out_of_range(score: int) -> None:
    with pytest.raises(ValueError, match="0..100"):
        band_of(score)


def test_float_money_is_refused() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        HealthInvoice(TODAY, 1.0, Decimal(0))  # type: ignore[arg-type]


_invoice = st.builds(
    lambda due_ago, late, total, is_open: (due_ago, late, total, is_open),
    st.integers(0, 364),
    st.integers(-30, 400),
    st.integers(0, 10_000),
    st.booleans(),
)


def _build(spec: tuple[int, int, int, bool]) -> HealthInvoice:
    due_ago, late, total, is_open = spec
    if is_open:
        return open_(due_ago, total=str(total), balance=str(total + 1))
    return paid(due_ago, late=late, total=str(total))


@settings(max_examples=100, deadline=None)
@given(st.lists(_invoice, min_size=1, max_size=8), st.data())
def test_more_lateness_never_raises_the_score(specs, data) -> None:
    """Paying one invoice later, or not at all by today, never raises the score."""
    index = data.draw(st.integers(0, len(specs) - 1))
    due_ago, late, total, _ = specs[index]
    specs[index] = (due_ago, late, total, False)
    worse = list(specs)
    if data.draw(st.booleans()):
        worse[index] = (due_ago, late + data.draw(st.integers(1, 400)), total, False)
    else:
        worse[index] = (due_ago, late, total, True)
    before, after = assess([_build(s) for s in specs], TODAY), assess([_build(s) for s in worse], TODAY)
    assert before.score is not None and after.score is not None
    assert after.score <= before.score


@settings(max_examples=100, deadline=None)
@given(st.lists(_invoice, min_size=1, max_size=8))
def test_score_is_in_range_and_band_follows(specs) -> None:
    health = assess([_build(s) for s in specs], TODAY)
    assert health.score is not None and 0 <= health.score <= 100
    assert health.band is band_of(health.score)
