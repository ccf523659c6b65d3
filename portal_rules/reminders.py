"""Reminder selection: which (invoice, offset) reminders are due today, grouped per customer.

A reminder for (invoice, offset) is due once `today >= due_date + offset days`, while
the invoice is visible with a balance above 0 and its customer is portal-visible and not
paused, unless that (invoice, offset) was ever sent or skipped. When several offsets of
one invoice are due at once (the worker was down), only the latest is sent and the
earlier ones are recorded as skipped; when the latest due offset is already on record,
earlier ones not on record (offsets added since) are skipped too, never sent late.
Everything due for one customer goes out as one email.

"At most once, ever" is the caller's to enforce with a unique (company, invoice, offset)
ledger written in the same transaction as the outbox message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from portal_rules.customers import portal_visible_customer
from portal_rules.types import CustomerFacts, InvoiceFacts
from portal_rules.visibility import is_visible

ReminderKey = tuple[str, int]
"""(invoice_ref, offset_days): one reminder, sent or skipped at most once."""


@dataclass(frozen=True, slots=True)
class ReminderItem:
    invoice: InvoiceFacts
    offset: int  # days relative to the due date (negative: before it)

    @property
    def key(self) -> ReminderKey:
        return (self.invoice.ref, self.offset)


@dataclass(frozen=True, slots=True)
class CustomerReminder:
    """One email to one customer listing every invoice it is reminded of."""

    customer_ref: str
    items: tuple[ReminderItem, ...]  # by due date, then document number

    @property
    def balance(self) -> Decimal:
        """The listed invoices' balances added up (one currency per customer is assumed)."""
        return sum((item.invoice.balance for item in self.items), Decimal(0))


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    reminders: tuple[CustomerReminder, ...]  # by customer ref
    skipped: tuple[ReminderKey, ...]  # record as skipped, never send

    @property
    def sent_keys(self) -> tuple[ReminderKey, ...]:
        """The keys to record as sent along with the reminder emails."""
        return tuple(item.key for reminder in self.reminders for item in reminder.items)


def reminder_date(due_date: date, offset: int) -> date:
    """The first day on which the reminder for `offset` is due."""
    return due_date + timedelta(days=offset)


def due_reminders(
    invoices: Iterable[InvoiceFacts],
    customers: Mapping[str, CustomerFacts],
    offsets: Sequence[int],
    already_done: Collection[ReminderKey],
    today: date,
    *,
    import_inactive: bool = False,
) -> ReminderPlan:
    """The reminders to send and the ones to record as skipped on `today` (company date).

    `offsets` are the company's `reminder_offsets_days` (`DEFAULT_REMINDER_OFFSETS`
    unless configured); `already_done` holds every (invoice_ref, offset) ever sent or
    skipped; `customers` maps ref -> facts (an invoice of an unknown customer is skipped).
    """
    ordered_offsets = sorted(set(offsets))
    by_customer: dict[str, list[ReminderItem]] = defaultdict(list)
    skipped: list[ReminderKey] = []
    for invoice in invoices:
        customer = customers.get(invoice.customer_ref)
        if invoice.due_date is None or not remindable(invoice, customer, import_inactive):
            continue
        send, skip = _select_offset(invoice.ref, invoice.due_date, ordered_offsets, already_done, today)
        skipped.extend((invoice.ref, offset) for offset in skip)
        if send is not None:
            by_customer[invoice.customer_ref].append(ReminderItem(invoice, send))
    reminders = tuple(
        CustomerReminder(ref, tuple(sorted(items, key=_item_order)))
        for ref, items in sorted(by_customer.items())
    )
    return ReminderPlan(reminders, tuple(skipped))


def remindable(invoice: InvoiceFacts, customer: CustomerFacts | None, import_inactive: bool) -> bool:
    """Whether `invoice` may be in a reminder: visible with a balance, its customer in the
    portal and not paused. Planning asks it, and so does sending (the invoice may have been
    paid while its reminder waited for the delivery window)."""
    if customer is None or customer.reminders_paused:
        return False
    if not is_visible(invoice, portal_visible_customer(customer, import_inactive)):
        return False
    return invoice.balance > 0


def _select_offset(
    ref: str, due_date: date, offsets: list[int], done: Collection[ReminderKey], today: date
) -> tuple[int | None, list[int]]:
    """(offset to send or None, offsets to skip) for one remindable invoice."""
    # days since the due date, not `reminder_date`: the books may hold a due date at the
    # calendar's edge (Xero's DateTime.MinValue, 0001-01-01) that an offset would push past it
    late = (today - due_date).days
    due = [offset for offset in offsets if late >= offset]
    if not due:
        return None, []
    latest = due[-1]
    earlier = [offset for offset in due[:-1] if (ref, offset) not in done]
    if (ref, latest) in done:
        return None, earlier
    return latest, earlier


def _item_order(item: ReminderItem) -> tuple[date, str, str]:
    return (item.invoice.due_date or date.max, item.invoice.doc_number or "", item.invoice.ref)
