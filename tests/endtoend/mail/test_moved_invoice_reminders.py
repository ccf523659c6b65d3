"""A reminder waiting for the window lists an invoice the books then moved to another customer.

Found by the mail differential (`tests/properties/test_mail_differential.py`, Xero seed 9076 on
PostgreSQL): when the dispatcher took such a reminder back to plan it again, it counted it as
the moved invoice's new customer's, so the old customer's other reminder waiting beside it went
alone, and the old customer's invoices followed a minute later in a second email (SPEC 2: all
reminders due for one customer at the same time go out as one email).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.endtoend.mail.conftest import customer, invoice, iso

SATURDAY_NOON = datetime(2026, 11, 21, 17, tzinfo=UTC)  # New York
MONDAY_OPENING = datetime(2026, 11, 23, 14, tzinfo=UTC)  # Mon 09:00 EST
SATURDAY, MONDAY = date(2026, 11, 21), date(2026, 11, 23)


def listed(received) -> list[str]:
    body = received.message.get_body(("plain",)).get_content()
    return sorted(word for word in body.split() if word.startswith("INV-"))


@pytest.mark.parametrize("moved", ["09", "11"])  # before or after the other invoice's ref
def test_a_customer_gets_one_email_when_a_waiting_reminder_lists_an_invoice_moved_away(
    make_shop, store_url, smtp, moved
):
    shop = make_shop(store_url, reminder_offsets_days=[0])
    customers = [customer("1", "Customer 1", "c1@example.com"), customer("2", "Customer 2", "c2@example.com")]
    shop.sync(customers, [invoice("10", "1", SATURDAY, "120.00"), invoice(moved, "1", SATURDAY, "30.00")])
    assert shop.cli("reminders", "plan", "--now", iso(SATURDAY_NOON)).code == 0  # waits for Monday

    # over the weekend the books bill the second invoice to customer 2, and a new one to customer 1
    shop.sync_changes([invoice(moved, "2", SATURDAY, "30.00"), invoice("12", "1", MONDAY, "75.00")])
    for minute in (0, 1):  # the daemon's ticks: plan, then dispatch
        at = iso(MONDAY_OPENING + timedelta(minutes=minute))
        assert shop.cli("reminders", "plan", "--now", at).code == 0
        assert shop.cli("mail", "dispatch", "--now", at).code == 0

    emails = {tuple(r.rcpt_tos): listed(r) for r in smtp.received}
    assert len(smtp.received) == len(emails)  # one email per customer
    assert emails == {("c1@example.com",): ["INV-10", "INV-12"], ("c2@example.com",): [f"INV-{moved}"]}


@pytest.mark.parametrize("moved", ["09", "11"])
def test_a_waiting_reminder_never_shows_a_customer_an_invoice_moved_to_another(
    make_shop, store_url, smtp, moved
):
    """The same without a new invoice: read as the old customer's (the moved invoice's ref
    sorting after the other's), the reminder went to customer 1 listing customer 2's invoice."""
    shop = make_shop(store_url, reminder_offsets_days=[0])
    customers = [customer("1", "Customer 1", "c1@example.com"), customer("2", "Customer 2", "c2@example.com")]
    shop.sync(customers, [invoice("10", "1", SATURDAY, "120.00"), invoice(moved, "1", SATURDAY, "30.00")])
    assert shop.cli("reminders", "plan", "--now", iso(SATURDAY_NOON)).code == 0

    shop.sync_changes([invoice(moved, "2", SATURDAY, "30.00")])
    for minute in (0, 1):
        at = iso(MONDAY_OPENING + timedelta(minutes=minute))
        assert shop.cli("reminders", "plan", "--now", at).code == 0
        assert shop.cli("mail", "dispatch", "--now", at).code == 0

    emails = sorted((tuple(r.rcpt_tos), listed(r)) for r in smtp.received)
    assert emails == [(("c1@example.com",), ["INV-10"]), (("c2@example.com",), [f"INV-{moved}"])]
