from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal_rules.reminders import ReminderPlan, due_reminders, reminder_date
from portal_rules.types import DEFAULT_REMINDER_OFFSETS

from .factories import customer, day, invoice

OFFSETS = DEFAULT_REMINDER_OFFSETS  # (-3, 0, 7, 14, 30)
C1 = {"C1": customer("C1")}
DUE = invoice("I1", "C1", due="2026-06-01")  # a Monday


def _summary(plan: ReminderPlan) -> tuple[list, list]:
    sent = [(r.customer_ref, [item.key for item in r.items]) for r in plan.reminders]
    return sent, sorted(plan.skipped)


@pytest.mark.parametrize(
    ("invoices", "customers", "done", "today", "sent", "skipped"),
    [
        ([DUE], C1, set(), "2026-05-28", [], []),
        ([DUE], C1, set(), "2026-05-29", [("C1", [("I1", -3)])], []),
        ([DUE], C1, {("I1", -3)}, "2026-05-30", [], []),
        ([DUE], C1, {("I1", -3)}, "2026-06-01", [("C1", [("I1", 0)])], []),
        ([DUE], C1, {("I1", -3), ("I1", 0)}, "2026-06-07", [], []),
        (
            [DUE],
            C1,
            set(),
            "2026-06-20",
            [("C1", [("I1", 14)])],
            [("I1", -3), ("I1", 0), ("I1", 7)],
        ),
        ([DUE], C1, {("I1", -3)}, "2026-06-20", [("C1", [("I1", 14)])], [("I1", 0), ("I1", 7)]),
        ([DUE], C1, {(("I1", o)) for o in OFFSETS}, "2027-01-01", [], []),
        ([DUE], C1, {("I1", 7)}, "2026-06-09", [], [("I1", -3), ("I1", 0)]),
        ([DUE], {"C1": customer("C1", paused=True)}, set(), "2026-06-20", [], []),
        ([DUE], {"C1": customer("C1", active=False)}, set(), "2026-06-01", [], []),
        ([DUE], {"C1": customer("C1", deleted=True)}, set(), "2026-06-01", [], []),
        ([DUE], {}, set(), "2026-06-01", [], []),
        ([invoice("I1", sent=False)], C1, set(), "2026-06-01", [], []),
        (
            [invoice("I1", sent=False, override=True)],
            C1,
            set(),
            "2026-06-01",
            [("C1", [("I1", 0)])],
            [("I1", -3)],
        ),
        ([invoice("I1", sent=True, override=False)], C1, set(), "2026-06-01", [], []),
        ([invoice("I1", balance="0", total="100")], C1, set(), "2026-06-20", [], []),
        ([invoice("I1", balance="0", voided=True)], C1, set(), "2026-06-20", [], []),
        ([invoice("I1", due=None)], C1, set(), "2026-06-20", [], []),
        (
            [
                invoice("I2", "C1", due="2026-06-08", doc_number="1002"),
                invoice("I1", "C1", due="2026-06-01", doc_number="1001"),
                invoice("I3", "C2", due="2026-06-08"),
                invoice("I4", "C3", due="2026-07-30"),
            ],
            {"C1": customer("C1"), "C2": customer("C2"), "C3": customer("C3")},
            {("I1", -3), ("I1", 0)},
            "2026-06-08",
            [("C1", [("I1", 7), ("I2", 0)]), ("C2", [("I3", 0)])],
            [("I2", -3), ("I3", -3)],
        ),
    ],
    ids=[
        "four-days-before-nothing-yet",
        "three-days-before-first-reminder",
        "after-first-before-next",
        "on-due-date",
        "nothing-twice",
        "worker-down-latest-only-earlier-skipped",
        "worker-down-after-one-sent",
        "every-offset-done-never-again",
        "offset-added-after-a-later-one-is-skipped-not-sent",
        "paused-customer-nothing-recorded",
        "inactive-customer",
        "deleted-customer",
        "unknown-customer",
        "unsent-invoice",
        "mark-sent-invoice-reminded",
        "mark-unsent-invoice-not-reminded",
        "paid-invoice",
        "voided-invoice",
        "no-due-date",
        "one-email-per-customer-listing-every-invoice",
    ],
)
def test_due_reminders(invoices, customers, done, today: str, sent, skipped) -> None:
    plan = due_reminders(invoices, customers, OFFSETS, done, day(today))
    assert _summary(plan) == (sent, sorted(skipped))


@pytest.mark.parametrize(
    ("import_inactive", "sent"),
    [(False, []), (True, [("C1", [("I1", 0)])])],
    ids=["inactive-hidden-by-default", "inactive-imported-by-setting-is-reminded"],
)
def test_inactive_customer_follows_the_import_setting(import_inactive: bool, sent) -> None:
    customers = {"C1": customer("C1", active=False)}
    plan = due_reminders([DUE], customers, (0,), set(), day("2026-06-01"), import_inactive=import_inactive)
    assert _summary(plan) == (sent, [])


@pytest.mark.parametrize(
    ("offsets", "today", "sent", "skipped"),
    [
        ((0,), "2026-06-01", [("C1", [("I1", 0)])], []),
        ((30, 7, 7), "2026-07-15", [("C1", [("I1", 30)])], [("I1", 7)]),
        ((), "2026-07-15", [], []),
    ],
    ids=["single-offset", "unsorted-duplicate-offsets", "no-offsets-no-reminders"],
)
def test_custom_offsets(offsets, today: str, sent, skipped) -> None:
    plan = due_reminders([DUE], C1, offsets, set(), day(today))
    assert _summary(plan) == (sent, skipped)


def test_due_dates_at_the_calendars_edges_are_planned_not_overflowed() -> None:
    """The books may hold 0001-01-01 (Xero's DateTime.MinValue) or 9999-12-31: an offset that
    would take the reminder date past the calendar must not stop the company's planning."""
    invoices = [invoice("OLD", due="0001-01-01"), invoice("LATE", due="9999-12-31"), invoice("I2")]
    plan = due_reminders(invoices, C1, (-3650, -3, 0, 3650), set(), day("2026-06-01"))
    assert _summary(plan) == (
        [("C1", [("OLD", 3650), ("I2", 0)])],  # by due date
        [("I2", -3650), ("I2", -3)] + [("OLD", -3650), ("OLD", -3), ("OLD", 0)],
    )


def test_grouped_reminder_carries_invoices_and_total() -> None:
    invoices = [invoice("I1", balance="10.10"), invoice("I2", balance="5.05")]
    plan = due_reminders(invoices, C1, OFFSETS, set(), day("2026-06-01"))
    (reminder,) = plan.reminders
    assert [item.invoice for item in reminder.items] == invoices
    assert reminder.balance == Decimal("15.15")
    assert plan.sent_keys == (("I1", 0), ("I2", 0))


@given(
    dues=st.lists(st.integers(-60, 60), min_size=1, max_size=6),
    done_mask=st.lists(st.booleans(), min_size=30, max_size=30),
    offsets=st.lists(st.integers(-10, 40), max_size=6),
)
def test_reminders_never_repeat_and_never_come_early(dues, done_mask, offsets) -> None:
    today = day("2026-06-01")
    invoices = [invoice(f"I{i}", due=str(today + timedelta(days=d))) for i, d in enumerate(dues)]
    keys = [(inv.ref, o) for inv in invoices for o in sorted(set(offsets))]
    done = {key for key, is_done in zip(keys, done_mask, strict=False) if is_done}
    plan = due_reminders(invoices, C1, offsets, done, today)
    sent = plan.sent_keys
    by_ref = {inv.ref: inv for inv in invoices}
    assert not set(sent) & done and not set(plan.skipped) & done
    assert not set(sent) & set(plan.skipped)
    assert len({ref for ref, _ in sent}) == len(sent)  # at most one reminder per invoice
    for ref, offset in (*sent, *plan.skipped):
        assert today >= reminder_date(by_ref[ref].due_date, offset)
    for ref, offset in plan.skipped:  # skipped only in favour of a later offset
        assert any(r == ref and o > offset for r, o in (*sent, *done))
