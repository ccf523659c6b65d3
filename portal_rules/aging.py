"""Aging of a customer's open balance on a given day: current, 1–30, 31–60, 61–90, over 90.

Over visible invoices with a positive balance, by days past due (day − due date). An
invoice due on the day itself, later, or without a due date is current.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
