"""Aging of a customer's open balance on a given day: current, 1–30, 31–60, 61–90, over 90.

Over visible invoices with a positive balance, by days past due (day − due date). An
invoice due on the day itself, later, or without a due date is current. A statement that
ends before today ages on its last day, over the invoices as they stood then (`invoices_on`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from portal_rules.types import InvoiceFacts
from portal_rules.visibility import is_visible

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Aging:
    current: Decimal = ZERO
    days_1_30: Decimal = ZERO
    days_31_60: Decimal = ZERO
    days_61_90: Decimal = ZERO
    over_90: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.current + self.days_1_30 + self.days_31_60 + self.days_61_90 + self.over_90

    def buckets(self) -> dict[str, Decimal]:
        """The buckets by their public names (JSON, PDF, API), oldest last."""
        return {
            "current": self.current,
            "1_30": self.days_1_30,
            "31_60": self.days_31_60,
            "61_90": self.days_61_90,
            "over_90": self.over_90,
        }


def bucket(days_past_due: int) -> str:
    """The bucket field of `Aging` an invoice this many days past due falls in."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days_1_30"
    if days_past_due <= 60:
        return "days_31_60"
    if days_past_due <= 90:
        return "days_61_90"
    return "over_90"


def aging(invoices: Iterable[InvoiceFacts], day: date, customer_visible: bool = True) -> Aging:
    """The customer's open balance on `day`, split by how long it has been past due."""
    sums = dict.fromkeys(Aging.__slots__, ZERO)
    for invoice in invoices:
        if not is_visible(invoice, customer_visible) or invoice.balance <= ZERO:
            continue
        late = 0 if invoice.due_date is None else (day - invoice.due_date).days
        sums[bucket(late)] += invoice.balance
    return Aging(**sums)


@dataclass(frozen=True, slots=True)
class Settlement:
    """Money applied to an invoice, dated as the statement line it is part of (the payment's
    or credit's own date; None: undated, which the statement counts before every day)."""

    invoice_ref: str
    on: date | None
    amount: Decimal


def aging_day(today: date, end: date | None) -> date:
    """The day a statement's aging is on: its last day when that is before today, else today."""
    return end if end is not None and end < today else today


def invoices_on(
    invoices: Iterable[InvoiceFacts], settlements: Iterable[Settlement], day: date
) -> list[InvoiceFacts]:
    """The invoices as a statement ending on `day` shows them: issued by then (or undated),
    each with its total less what was settled on or before that day (undated settlements too),
    so that their balances add up to that statement's closing balance."""
    settled: dict[str, Decimal] = {}
    for settlement in settlements:
        if settlement.on is None or settlement.on <= day:
            settled[settlement.invoice_ref] = settled.get(settlement.invoice_ref, ZERO) + settlement.amount
    return [
        replace(invoice, balance=invoice.total - settled.get(invoice.ref, ZERO))
        for invoice in invoices
        if invoice.issue_date is None or invoice.issue_date <= day
    ]
