"""A reminder waiting for the window whose invoice is paid before it opens is withdrawn unsent.
SPEC 2: a reminder for (invoice, offset) is due while the invoice is visible with a balance
and "that (invoice, offset) was never sent". Reopened by a refund, the invoice is owed again
and its offset was never sent: it is reminded now, not at its next offset. Before, the pair
was recorded as skipped when the reminder was withdrawn, and the customer heard nothing
until the next offset a week later."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from tests.endtoend.mail.conftest import customer, invoice, iso
from tests.endtoend.mail.test_delivery_windows import WEEKDAYS, utc

SATURDAY = utc("2026-11-14T15:00")  # 10:00 in New York: invoice 10, due Nov 7, reaches +7
MONDAY_OPENING = utc("2026-11-16T14:00")  # 09:00 in New York
TUESDAY = utc("2026-11-17T15:00")
NEXT_SATURDAY, NEXT_MONDAY = utc("2026-11-21T15:00"), utc("2026-11-23T14:00")  # +14


def test_an_invoice_paid_while_its_reminder_waited_and_reopened_is_reminded_at_once(
    make_shop, store_url, smtp
):
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[7, 14]
    )
    owed = invoice("10", "1", date(2026, 11, 7), "120.00")
    shop.sync([customer("1", "Customer 1", "c1@example.com")], [owed])
    assert shop.cli("reminders", "plan", "--now", iso(SATURDAY)).code == 0
    shop.sync_changes([replace(owed, balance=Decimal("0.00"))])  # paid on Sunday
    assert shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).out == (
        "mail: 0 sent, 0 failed, 0 to retry, 1 reminder(s) withdrawn: no longer due\n"
    )
    assert smtp.received == []

    shop.sync_changes([owed])  # refunded on Monday: 120.00 owed again
    assert shop.cli("reminders", "plan", "--now", iso(TUESDAY)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(TUESDAY)).out == "mail: 1 sent, 0 failed, 0 to retry\n"
    [reminder] = smtp.received
    assert "INV-10" in reminder.message.get_body(("plain",)).get_content()
    assert shop.rows("SELECT offset_days, status FROM reminder_ledger ORDER BY 1") == [(7, "sent")]

    # once, ever: planned again the same day, nothing; the next offset in its turn
    assert shop.cli("reminders", "plan", "--now", iso(TUESDAY)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(TUESDAY)).out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert shop.cli("reminders", "plan", "--now", iso(NEXT_SATURDAY)).code == 0
    assert (
        shop.cli("mail", "dispatch", "--now", iso(NEXT_MONDAY)).out == "mail: 1 sent, 0 failed, 0 to retry\n"
    )
    assert shop.rows("SELECT offset_days, status FROM reminder_ledger ORDER BY 1") == [
        (7, "sent"),
        (14, "sent"),
    ]
