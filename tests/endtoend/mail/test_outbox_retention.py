"""A company whose sent mail was pruned (`mailer.retention`) is still never reminded twice: the
ledger keeps every (invoice, offset), and no new message inherits a pruned one's pairs.

SPEC: a (invoice, offset) reminder is sent at most once, ever, whatever the number of workers
or restarts.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from mailer.retention import prune_outbox
from store.definitions import remove_definition
from tests.endtoend.mail.conftest import customer, invoice, iso
from tests.endtoend.mail.test_delivery_windows import WEEKDAYS, utc
from tests.mailer.test_outbox_retention import add_message

MONDAY_2ND = utc("2026-11-02T15:00")  # Mon 10:00 in New York: invoice 10 due today
FRIDAY_EVENING, MONDAY_OPENING = utc("2026-11-20T23:00"), utc("2026-11-23T14:00")  # invoice 20 due Friday
LISTED = re.compile(r"INV-(\d+)\b")


def listed(smtp) -> list[list[str]]:
    return [LISTED.findall(r.message.get_body(("plain",)).get_content()) for r in smtp.received]


def test_a_company_whose_mail_was_pruned_is_never_reminded_twice(make_shop, store_url, smtp):
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[0]
    )
    books = [invoice("10", "1", date(2026, 11, 2), "120.00"), invoice("20", "1", date(2026, 11, 20), "80.00")]
    shop.sync([customer("1", "Customer 1", "c1@example.com")], books)
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_2ND)).code == 0
    assert (
        shop.cli("mail", "dispatch", "--now", iso(MONDAY_2ND)).out == "mail: 1 sent, 0 failed, 0 to retry\n"
    )
    [(first,)] = shop.rows("SELECT id FROM outbox")
    with shop.engine.begin() as connection:  # another company's mail is the table's newest
        add_message(connection, "theirs", "other", ("sent", 0, None, 0, "reminder", None), now=MONDAY_2ND)

    assert prune_outbox(shop.engine, datetime.now(UTC) + timedelta(days=1)) == 1
    assert shop.rows("SELECT company_id FROM outbox") == [("other",)]
    assert shop.rows("SELECT invoice_ref, status, outbox_id FROM reminder_ledger") == [("10", "sent", None)]

    # planned again with the same invoice due: nothing, the ledger holds the pair
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_2ND)).code == 0
    assert (
        shop.cli("mail", "dispatch", "--now", iso(MONDAY_2ND)).out == "mail: 0 sent, 0 failed, 0 to retry\n"
    )

    # The other company purged, the outbox is empty: SQLite hands its first id out again, to
    # Friday's reminder held for Monday. Partly paid over the weekend, it is taken back and
    # planned again, with what that message lists, and only that.
    remove_definition(shop.engine, "other", purge=True)
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).code == 0
    [(held,)] = shop.rows("SELECT id FROM outbox")
    if store_url.startswith("sqlite"):
        assert held == first
    shop.sync_changes([replace(books[1], balance=Decimal("50.00"))])
    assert shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).out == (
        "mail: 0 sent, 0 failed, 0 to retry, 1 to plan again with today's balances\n"
    )
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).code == 0
    assert (
        shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).out
        == "mail: 1 sent, 0 failed, 0 to retry\n"
    )

    assert listed(smtp) == [["10"], ["20"]]  # each (invoice, offset) once, ever
    assert "50.00" in smtp.received[-1].message.get_body(("plain",)).get_content()
    later = MONDAY_OPENING + timedelta(hours=1)
    assert shop.cli("reminders", "plan", "--now", iso(later)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(later)).out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert len(smtp.received) == 2
