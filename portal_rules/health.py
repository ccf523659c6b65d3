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

import math
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
class _View:
    name: str
    average_days: Decimal
    late_share: Decimal

    @property
    def penalty(self) -> Decimal:
        return self.average_days + LATE_SHARE_POINTS * self.late_share


def assess(invoices: Iterable[HealthInvoice], today: date) -> Health:
    """The customer's health on `today` from its visible invoices (others in the list are ignored)."""
    counted = [(invoice, days_late(invoice, today)) for invoice in invoices if in_window(invoice, today)]
    if not counted:
        return Health(None, Band.UNKNOWN, f"no visible invoice due in the last {WINDOW_DAYS} days")
    views = [_weighted("by invoice", [(Decimal(1), days) for _, days in counted])]
    by_amount = [(max(invoice.total, ZERO), days) for invoice, days in counted]
    if sum(weight for weight, _ in by_amount) > ZERO:
        views.append(_weighted("by amount", by_amount))
    worst = max(views, key=lambda view: view.penalty)
    score = max(0, min(100, math.floor(100 - worst.penalty)))
    return Health(score, band_of(score), _reasons(counted, worst))


def _weighted(name: str, weighted_days: list[tuple[Decimal, int]]) -> _View:
    total = sum((weight for weight, _ in weighted_days), ZERO)
    days = sum((weight * days for weight, days in weighted_days), ZERO) / total
    late = sum((weight for weight, days in weighted_days if days > 0), ZERO) / total
    return _View(name, days, late)


def _reasons(counted: list[tuple[HealthInvoice, int]], worst: _View) -> str:
    paid = [days for invoice, days in counted if invoice.paid]
    late_paid = [days for days in paid if days > 0]
    open_days = [days for invoice, days in counted if not invoice.paid]
    undated = sum(1 for invoice, _ in counted if invoice.paid and invoice.cleared_on is None)
    parts = []
    if paid:
        parts.append(f"paid {len(paid) - len(late_paid)} of {_n(len(paid), 'invoice')} on time")
    if len(late_paid) == 1:
        parts.append(f"1 paid {_n(late_paid[0], 'day')} late")
    elif late_paid:
        parts.append(f"{len(late_paid)} paid late by {_avg(late_paid)} days on average")
    overdue = [days for days in open_days if days > 0]
    if overdue:
        span = f"{min(overdue)} to {max(overdue)}" if min(overdue) != max(overdue) else str(overdue[0])
        parts.append(f"{_n(len(overdue), 'open invoice')} {span} {'day' if span == '1' else 'days'} past due")
    if len(open_days) > len(overdue):
        parts.append(f"{_n(len(open_days) - len(overdue), 'open invoice')} due today")
    if undated:
        parts.append(f"{_n(undated, 'paid invoice')} without a payment date counted as on time")
    if worst.penalty > ZERO:
        parts.append(
            f"{worst.name}: {_one_place(worst.average_days)} days late on average, "
            f"{_one_place(100 * worst.late_share)}% late"
        )
    return "; ".join(parts)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _avg(days: list[int]) -> str:
    return _one_place(Decimal(sum(days)) / len(days))


def _one_place(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.1'))}"
    return text[:-2] if text.endswith(".0") else text
