"""Balance due and past-due amount of one customer, over its visible invoices only.

The balance of each invoice is the one the accounting system reports; these functions
only choose which invoices count. "Today" is the date in the company's time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from portal_rules.types import InvoiceFacts
from portal_rules.visibility import is_visible

ZERO = Decimal(0)


def balance_due(invoices: Iterable[InvoiceFacts], customer_visible: bool = True) -> Decimal:
    """Sum of `balance` over the visible invoices of one customer.

    `customer_visible` is that customer's portal visibility (a hidden customer owes
    nothing the portal could show). Amounts of different currencies are not converted.
    """
    return sum(
        (invoice.balance for invoice in invoices if is_visible(invoice, customer_visible)),
        ZERO,
    )


def past_due_amount(invoices: Iterable[InvoiceFacts], today: date, customer_visible: bool = True) -> Decimal:
    """Sum of `balance` over visible invoices with a positive balance due before `today`."""
    return sum(
        (
            invoice.balance
            for invoice in invoices
            if is_visible(invoice, customer_visible) and _overdue(invoice, today)
        ),
        ZERO,
    )


def is_past_due(invoices: Iterable[InvoiceFacts], today: date, customer_visible: bool = True) -> bool:
    """Whether the portal shows "Past Due": the past-due amount is positive."""
    return past_due_amount(invoices, today, customer_visible) > ZERO


def company_today(now_utc: datetime, tz_name: str) -> date:
    """The calendar date at `now_utc` in the company's time zone."""
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required, got a naive one")
    return now_utc.astimezone(ZoneInfo(tz_name)).date()


def _overdue(invoice: InvoiceFacts, today: date) -> bool:
    return invoice.balance > ZERO and invoice.due_date is not None and invoice.due_date < today
