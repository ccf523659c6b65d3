"""Customer health: a transparent 0–100 score from how late a customer pays (SPEC section 10).

Over the customer's visible invoices due in the last 365 days, each invoice is late by
`days late`: for a paid invoice the day it was cleared minus its due date, for an open one
the days it is past due so far (both at least 0). Lateness is averaged twice, once per
invoice and once per unit of money (each invoice weighted by its total), and the worse
of the two views counts:

    penalty = average days late + 20 × share of invoices late     (per view)
    score   = floor(100 − max(penalty by invoice, penalty by amount)), kept within 0..100

So paying everything on time scores 100, and a customer on average more than 60 days late
(in either view) scores below 40. A paid invoice whose clearing date is unknown (no payment
data) counts as paid on time: a customer is never marked down for data arsync lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

WINDOW_DAYS = 365
LATE_SHARE_POINTS = 20
GOOD_FROM = 70
FAIR_FROM = 40
ZERO = Decimal(0)


class Band(StrEnum):
    """The band of a score; the values appear in the `customer_health` view."""

    GOOD = "good"  # 70..100
    FAIR = "fair"  # 40..69
    POOR = "poor"  # 0..39
    UNKNOWN = "unknown"  # no score: no visible invoice due in the window


@dataclass(frozen=True, slots=True)
class HealthInvoice:
    """One visible invoice of the customer, as the score sees it.

    `cleared_on` is the date the invoice was paid off (the latest of the allocations that
    cleared it), or None when it is open or the date is unknown.
    """

    due_date: date
    total: Decimal
    balance: Decimal
    cleared_on: date | None = None

    def __post_init__(self) -> None:
        if isinstance(self.total, float) or isinstance(self.balance, float):
            raise TypeError("money must be Decimal, not float")

    @property
    def paid(self) -> bool:
        return self.balance <= ZERO


@dataclass(frozen=True, slots=True)
class Health:
    """A computed score (None when unknown), its band and its reasons in words."""

    score: int | None
    band: Band
    reasons: str


def band_of(score: int | None) -> Band:
    """The band a score falls in; also used for scores an admin sets."""
    if score is None:
        return Band.UNKNOWN
    if not 0 <= score <= 100:
        raise ValueError(f"a health score is 0..100, got {score}")
    if score >= GOOD_FROM:
        return Band.GOOD
    return Band.FAIR if score >= FAIR_FROM else Band.POOR


def window_start(today: date) -> date:
    """The earliest due date that counts on `today` (due dates run from here to `today`)."""
    return today - timedelta(days=WINDOW_DAYS - 1)


def in_window(invoice: HealthInvoice, today: date) -> bool:
    return window_start(today) <= invoice.due_date <= today


def days_late(invoice: HealthInvoice, today: date) -> int:
    """Days late of one invoice on `today`: when cleared (or so far, if open) minus due, at least 0."""
    if invoice.paid:
        if invoice.cleared_on is None:
            return 0  # paid, date unknown: counted as on time
        end = min(invoice.cleared_on, today)
    else:
        end = today
    return max(0, (end - invoice.due_date).days)


@dataclass(frozen=True, slots=True)
class Tally:
    """What the score reads from a customer's invoices in the window: counts and sums only.

    `tally` builds it from invoices; the store builds the same in one SQL pass per company
    (set-based, no row per invoice in Python). Weights are invoice totals (negative as 0).
    """

    invoices: int = 0
    late: int = 0  # invoices with days late > 0
    days: int = 0  # sum of days late
    weight: Decimal = ZERO  # sum of totals
    weighted_days: Decimal = ZERO  # sum of total × days late
    late_weight: Decimal = ZERO  # sum of totals of the late invoices
    paid: int = 0
    paid_late: int = 0
    paid_late_days: int = 0
    undated: int = 0  # paid, clearing date unknown (counted as on time)
    overdue: int = 0  # open and past due
    overdue_min_days: int | None = None
    overdue_max_days: int | None = None
    due_today: int = 0  # open, due today


def tally(invoices: Iterable[HealthInvoice], today: date) -> Tally:
    """The tally of the invoices due in the window on `today` (others are ignored)."""
    counted = [(invoice, days_late(invoice, today)) for invoice in invoices if in_window(invoice, today)]
    weights = [(max(invoice.total, ZERO), days) for invoice, days in counted]
    paid_days = [days for invoice, days in counted if invoice.paid]
    overdue = [days for invoice, days in counted if not invoice.paid and days > 0]
    return Tally(
        invoices=len(counted),
        late=sum(1 for _, days in counted if days > 0),
        days=sum(days for _, days in counted),
        weight=sum((weight for weight, _ in weights), ZERO),
        weighted_days=sum((weight * days for weight, days in weights), ZERO),
        late_weight=sum((weight for weight, days in weights if days > 0), ZERO),
        paid=len(paid_days),
        paid_late=sum(1 for days in paid_days if days > 0),
        paid_late_days=sum(paid_days),
        undated=sum(1 for invoice, _ in counted if invoice.paid and invoice.cleared_on is None),
        overdue=len(overdue),
        overdue_min_days=min(overdue, default=None),
        overdue_max_days=max(overdue, default=None),
        due_today=sum(1 for invoice, days in counted if not invoice.paid and days == 0),
    )


def assess(invoices: Iterable[HealthInvoice], today: date) -> Health:
    """The customer's health on `today` from its visible invoices (others in the list are ignored)."""
    return score(tally(invoices, today))


def score(counts: Tally) -> Health:
    """The score, band and reasons of one customer's tally (see the module docstring)."""
    if counts.invoices == 0:
        return Health(None, Band.UNKNOWN, f"no visible invoice due in the last {WINDOW_DAYS} days")
    views = [_View("by invoice", counts.days, counts.late, counts.invoices)]
    weight = _units(counts.weight)
    if weight > 0:
        views.append(_View("by amount", _units(counts.weighted_days), _units(counts.late_weight), weight))
    worst = views[0] if len(views) == 1 or views[0] >= views[1] else views[1]
    value = max(0, min(100, worst.floor_score()))
    return Health(value, band_of(value), _reasons(counts, worst))


def _units(amount: Decimal) -> int:
    """An amount in exact integer units of 1/10000 (the store's precision), for integer maths."""
    return int(amount.scaleb(4).to_integral_value())


@dataclass(frozen=True, slots=True)
class _View:
    """One way of averaging: penalty = (days + 20 × late) / weight, kept as exact integers."""

    name: str
    days: int  # weighted sum of days late
    late: int  # weight of the late invoices
    weight: int

    def __ge__(self, other: _View) -> bool:
        return self._penalty_numerator() * other.weight >= other._penalty_numerator() * self.weight

    def _penalty_numerator(self) -> int:
        return self.days + LATE_SHARE_POINTS * self.late

    def floor_score(self) -> int:
        return (100 * self.weight - self._penalty_numerator()) // self.weight

    @property
    def average_days(self) -> Decimal:
        return Decimal(self.days) / self.weight

    @property
    def late_share(self) -> Decimal:
        return Decimal(self.late) / self.weight


def _reasons(counts: Tally, worst: _View) -> str:
    parts = []
    if counts.paid:  # of every invoice counted, open ones included (SPEC §10: "paid 9 of 10 ...")
        counted = counts.paid + counts.overdue + counts.due_today
        parts.append(f"paid {counts.paid - counts.paid_late} of {_n(counted, 'invoice')} on time")
    if counts.paid_late == 1:
        parts.append(f"1 paid {_n(counts.paid_late_days, 'day')} late")
    elif counts.paid_late:
        average = _one_place(Decimal(counts.paid_late_days) / counts.paid_late)
        parts.append(f"{counts.paid_late} paid late by {_days(average)} on average")
    if counts.overdue:
        low, high = counts.overdue_min_days, counts.overdue_max_days
        span = f"{low} to {high}" if low != high else str(low)
        parts.append(f"{_n(counts.overdue, 'open invoice')} {_days(span)} past due")
    if counts.due_today:
        parts.append(f"{_n(counts.due_today, 'open invoice')} due today")
    if counts.undated:
        parts.append(f"{_n(counts.undated, 'paid invoice')} without a payment date counted as on time")
    if worst.days or worst.late:
        parts.append(
            f"{worst.name}: {_days(_one_place(worst.average_days))} late on average, "
            f"{_one_place(100 * worst.late_share)}% late"
        )
    return "; ".join(parts)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _days(number: str) -> str:
    """A number of days as written: "1 day", "1.5 days", "3 to 5 days"."""
    return f"{number} {'day' if number == '1' else 'days'}"


def _one_place(value: Decimal) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
