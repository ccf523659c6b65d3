"""Delivery windows through `arsync reminders plan` + `arsync mail dispatch` and automatic
invitations: automatic mail waits for the window's opening, then goes out once.

Every opening below was computed by hand from the zone rules (US: DST from the second
Sunday of March 02:00 to the first Sunday of November 02:00; New South Wales: from the
first Sunday of October 02:00 AEST to the first Sunday of April 03:00 AEDT), never with
the function under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from mailer.preview import HELD_NOTE
from mailer.take_back import HELD
from portal_rules.records import Quarantined
from store.tables import Invitation
from sync.invites import invite
from tests.endtoend.mail.conftest import COMPANY, FRIDAY_10AM, INVITE_LINK, customer, invoice, iso

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


@dataclass(frozen=True)
class Case:
    timezone: str
    days: list[str]
    hours: tuple[int, int]
    planned_at: datetime  # outside the window
    opening: datetime  # its next opening, by hand
    store: str = "sqlite"
    settings: dict = field(default_factory=dict)


CASES = [
    pytest.param(
        Case("America/New_York", WEEKDAYS, (9, 17), utc("2026-11-20T23:00"), utc("2026-11-23T14:00")),
        id="9-17-new-york-fri-18h-est-to-mon-9h-est",
    ),
    pytest.param(
        Case("America/New_York", WEEKDAYS, (9, 17), utc("2026-06-12T22:00"), utc("2026-06-15T13:00")),
        id="9-17-new-york-fri-18h-edt-to-mon-9h-edt",
    ),
    pytest.param(
        Case("America/New_York", WEEKDAYS, (22, 5), utc("2026-11-23T17:00"), utc("2026-11-24T03:00")),
        id="overnight-22-5-mon-noon-to-mon-22h",
    ),
    pytest.param(
        Case("America/New_York", WEEKDAYS, (22, 5), utc("2026-11-21T11:00"), utc("2026-11-24T03:00")),
        id="overnight-22-5-closed-sat-6h-to-mon-22h",
    ),
    pytest.param(
        Case("America/New_York", EVERY_DAY, (9, 17), utc("2026-03-08T06:00"), utc("2026-03-08T13:00")),
        id="new-york-spring-forward-opens-9h-edt",
    ),
    pytest.param(
        Case("America/New_York", EVERY_DAY, (2, 17), utc("2026-03-08T05:30"), utc("2026-03-08T07:00")),
        id="new-york-spring-forward-2h-skipped-opens-3h-edt",
    ),
    pytest.param(
        Case("America/New_York", EVERY_DAY, (9, 17), utc("2026-11-01T04:30"), utc("2026-11-01T14:00")),
        id="new-york-fall-back-opens-9h-est",
    ),
    pytest.param(
        Case(
            "America/New_York",
            EVERY_DAY,
            (9, 17),
            utc("2026-11-01T04:30"),
            utc("2026-11-01T14:00"),
            "postgres",
        ),
        id="new-york-fall-back-opens-9h-est-postgres",
    ),
    pytest.param(
        Case("America/New_York", EVERY_DAY, (1, 5), utc("2026-11-01T03:00"), utc("2026-11-01T05:00")),
        id="new-york-fall-back-repeated-1h-opens-at-the-first",
    ),
    pytest.param(
        Case("Australia/Sydney", EVERY_DAY, (9, 17), utc("2026-04-04T13:30"), utc("2026-04-04T23:00")),
        id="sydney-fall-back-opens-9h-aest",
    ),
    pytest.param(
        Case("Australia/Sydney", EVERY_DAY, (2, 5), utc("2026-04-04T12:00"), utc("2026-04-04T15:00")),
        id="sydney-fall-back-repeated-2h-opens-at-the-first",
    ),
    pytest.param(
        Case("Australia/Sydney", EVERY_DAY, (9, 17), utc("2026-10-03T14:30"), utc("2026-10-03T22:00")),
        id="sydney-spring-forward-opens-9h-aedt",
    ),
    pytest.param(
        Case("Australia/Sydney", EVERY_DAY, (2, 17), utc("2026-10-03T14:30"), utc("2026-10-03T16:00")),
        id="sydney-spring-forward-2h-skipped-opens-3h-aedt",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_a_reminder_planned_outside_the_window_goes_out_once_at_the_opening(make_shop, request, smtp, case):
    shop = make_shop(
        request.getfixturevalue("pg_url" if case.store == "postgres" else "sqlite_url"),
        timezone=case.timezone,
        delivery_days=case.days,
        delivery_from_hour=case.hours[0],
        delivery_to_hour=case.hours[1],
        reminder_offsets_days=[0],
    )
    shop.sync(
        [customer("1", "Café Müller", "ap@cafe.example")], [invoice("10", "1", date(2026, 1, 1), "120.00")]
    )

    planned = shop.cli("reminders", "plan", "--now", iso(case.planned_at))
    assert planned.code == 0, planned.err
    assert f"  1 -> ap@cafe.example at {iso(case.opening)}: INV-10 (+0d)" in planned.out

    assert shop.cli("mail", "dispatch", "--now", iso(case.planned_at)).out.startswith("mail: 0 sent")
    preview = shop.cli("mail", "dispatch", "--dry-run", "--now", iso(case.planned_at)).out
    assert f"to ap@cafe.example: {iso(case.opening)} [delivery window]" in preview
    just_before = shop.cli("mail", "dispatch", "--now", iso(case.opening - timedelta(seconds=1)))
    assert just_before.out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert smtp.received == []

    opened = shop.cli("mail", "dispatch", "--now", iso(case.opening))
    assert opened.out == "mail: 1 sent, 0 failed, 0 to retry\n"
    later = shop.cli("mail", "dispatch", "--now", iso(case.opening + timedelta(hours=1)))
    assert later.out == "mail: 0 sent, 0 failed, 0 to retry\n"
    [received] = smtp.received
    assert received.rcpt_tos == ["ap@cafe.example"]
    assert "INV-10" in received.message.get_body(("plain",)).get_content()
    assert shop.outbox("status", "sent_at") == [("sent", case.opening)]
    # dated as it left, not as it was planned (a customer saw a reminder written at night)
    assert received.message["Date"].datetime == case.opening


# --- automatic invitations (auto_invite = true) -----------------------------------------------

UNWANTED = "withdrawn before sending: automatic invitations are off for the company (auto_invite = false)"
SATURDAY_NIGHT = utc("2026-11-22T04:30")  # Sat 23:30 in New York (EST)
MONDAY_9AM = utc("2026-11-23T14:00")  # Mon 09:00 EST: the window opens


def recipients(smtp) -> list[str]:
    return sorted(address for r in smtp.received for address in r.rcpt_tos)


def test_automatic_invitations_wait_for_the_window_manual_ones_do_not(make_shop, store_url, smtp):
    shop = make_shop(store_url, auto_invite=True)
    shop.sync([customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in (1, 2, 3)], [])

    manual = shop.cli("invite", COMPANY, "--customer", "3", "--now", iso(SATURDAY_NIGHT))
    assert manual.code == 0, manual.err
    assert recipients(smtp) == ["c3@example.com"]  # at once, on a Saturday night

    # What the daemon does after each successful sync when auto_invite is on.
    report = invite(
        shop.engine, shop.config, shop.company, now=SATURDAY_NIGHT, all_eligible=True, automatic=True
    )
    assert report.invited == [("1", "c1@example.com"), ("2", "c2@example.com")]  # 3 is already pending
    assert shop.rows("SELECT recipient, automatic, status FROM outbox ORDER BY recipient") == [
        ("c1@example.com", True, "queued"),
        ("c2@example.com", True, "queued"),
        ("c3@example.com", False, "sent"),
    ]
    assert shop.cli("mail", "dispatch", "--now", iso(SATURDAY_NIGHT)).out.startswith("mail: 0 sent")
    before = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM - timedelta(seconds=1)))
    assert before.out.startswith("mail: 0 sent")
    assert recipients(smtp) == ["c3@example.com"]

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM))
    assert opened.out == "mail: 2 sent, 0 failed, 0 to retry\n"
    assert recipients(smtp) == ["c1@example.com", "c2@example.com", "c3@example.com"]
    for received in smtp.received:
        token = INVITE_LINK.search(received.message.get_body(("plain",)).get_content()).group(1)
        assert shop.cli("portal", "accept", COMPANY, token, "--now", iso(MONDAY_9AM)).code == 0
    assert shop.rows("SELECT DISTINCT status FROM portal_accounts") == [("enabled",)]


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_an_invitation_held_for_the_window_keeps_all_its_days_from_when_it_leaves(
    make_shop, request, smtp, store_kind
):
    """`invitation_ttl_days = 1`: an automatic invitation issued on Saturday night goes out at
    Monday's opening. Its day was counted from the issue, so the mail that said "The link
    expires in 1 day" carried a link already expired, and the contact, left `pending`, was
    never invited again. Now its day runs from the mail leaving, whatever the store."""
    url = request.getfixturevalue("sqlite_url" if store_kind == "sqlite" else "pg_url")
    shop = make_shop(url, auto_invite=True, invitation_ttl_days=1)
    shop.sync([customer("1", "Customer 1", "c1@example.com")], [])
    invite(shop.engine, shop.config, shop.company, now=SATURDAY_NIGHT, all_eligible=True, automatic=True)

    dispatched = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM))
    assert dispatched.out == "mail: 1 sent, 0 failed, 0 to retry\n"

    [sent] = smtp.received
    text = sent.message.get_body(("plain",)).get_content()
    assert "The link expires in 1 day." in text
    token = INVITE_LINK.search(text).group(1)
    late = shop.cli("portal", "accept", COMPANY, token, "--now", iso(MONDAY_9AM + timedelta(days=1)))
    assert late.code == 1 and "invalid invitation token" in late.err  # a day after it left: expired
    accepted = shop.cli("portal", "accept", COMPANY, token, "--now", iso(MONDAY_9AM + timedelta(hours=23)))
    assert accepted.code == 0, accepted.err
    assert shop.rows("SELECT status FROM portal_accounts") == [("enabled",)]


def test_a_superseded_automatic_invitation_is_not_delivered_later(make_shop, sqlite_url, smtp):
    shop = make_shop(sqlite_url, auto_invite=True)
    shop.sync([customer("1", "Customer 1", "c1@example.com")], [])
    invite(shop.engine, shop.config, shop.company, now=SATURDAY_NIGHT, all_eligible=True, automatic=True)
    manual = shop.cli(
        "invite", COMPANY, "--customer", "1", "--now", iso(SATURDAY_NIGHT + timedelta(minutes=5))
    )
    assert manual.code == 0, manual.err
    [first] = smtp.received

    shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM))

    assert [r.message["Message-ID"] for r in smtp.received] == [first.message["Message-ID"]]


def test_an_automatic_invitation_is_withdrawn_when_its_contact_left_the_portal_meanwhile(
    make_shop, store_url, smtp
):
    shop = make_shop(store_url, auto_invite=True)
    shop.sync([customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in (1, 2, 3)], [])
    invite(shop.engine, shop.config, shop.company, now=SATURDAY_NIGHT, all_eligible=True, automatic=True)
    # Sunday: an admin disables one contact, the books replace another's address.
    disabled = shop.cli("portal", "disable", COMPANY, "--customer", "1", "--email", "c1@example.com")
    assert disabled.code == 0, disabled.err
    shop.sync_changes([customer("2", "Customer 2", "new2@example.com")])

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM))

    assert recipients(smtp) == ["c3@example.com"]
    assert opened.out == (
        "mail: 1 sent, 0 failed, 0 to retry, 2 invitation(s) withdrawn: can no longer be accepted\n"
    )
    assert shop.rows("SELECT recipient, status FROM outbox ORDER BY recipient") == [
        ("c1@example.com", "dropped"),
        ("c2@example.com", "dropped"),
        ("c3@example.com", "sent"),
    ]


def test_automatic_invitations_held_for_the_window_are_withdrawn_once_auto_invite_is_off(
    make_shop, store_url, smtp
):
    """Queued on Saturday night for Monday's opening; on Sunday the company turns `auto_invite`
    off. Monday's dispatch sends none of them. A manual invitation that met the server down on
    Saturday night still goes: `auto_invite` is about automatic invitations only."""
    shop = make_shop(store_url, auto_invite=True)
    shop.sync([customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in (1, 2, 3)], [])
    smtp.stop()
    manual = shop.cli("invite", COMPANY, "--customer", "3", "--now", iso(SATURDAY_NIGHT))
    assert manual.code == 0, manual.err
    assert "mail: 0 sent, 0 failed, 1 to retry" in manual.out
    invite(shop.engine, shop.config, shop.company, now=SATURDAY_NIGHT, all_eligible=True, automatic=True)
    smtp.start()  # back up, same port
    shop = make_shop(store_url, auto_invite=False)  # Sunday: the admin turns automatic invitations off

    preview = shop.cli("mail", "dispatch", "--dry-run", "--now", iso(MONDAY_9AM)).out
    off = "[due now; automatic invitations are off for the company: withdrawn unless that changes]"
    assert f"to c1@example.com: {iso(MONDAY_9AM)} {off}" in preview
    assert f"to c2@example.com: {iso(MONDAY_9AM)} {off}" in preview
    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM))

    assert opened.out == (
        "mail: 1 sent, 0 failed, 0 to retry, 2 automatic invitation(s) withdrawn: auto_invite is off\n"
    )
    assert recipients(smtp) == ["c3@example.com"]
    assert shop.rows("SELECT recipient, automatic, status, last_error FROM outbox ORDER BY recipient") == [
        ("c1@example.com", True, "dropped", UNWANTED),
        ("c2@example.com", True, "dropped", UNWANTED),
        ("c3@example.com", False, "sent", None),
    ]
    later = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM + timedelta(hours=1)))
    assert later.out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert recipients(smtp) == ["c3@example.com"]


def test_contacts_whose_automatic_invitations_were_withdrawn_are_invited_once_auto_invite_is_on_again(
    make_shop, store_url, smtp
):
    """A withdrawn invitation never left, so its contact is not invited: it was left `pending`
    (shown as invited in the portal views), and automatic invitations, which only reach
    `not_invited` contacts, never invited it again after `auto_invite` was turned back on."""
    shop = make_shop(store_url, auto_invite=True)
    shop.sync([customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in (1, 2)], [])
    invite(shop.engine, shop.config, shop.company, now=SATURDAY_NIGHT, all_eligible=True, automatic=True)
    shop = make_shop(store_url, auto_invite=False)
    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM))
    assert "2 automatic invitation(s) withdrawn" in opened.out
    statuses = "SELECT email, portal_status FROM contacts ORDER BY email"
    assert shop.rows(statuses) == [("c1@example.com", "not_invited"), ("c2@example.com", "not_invited")]
    assert shop.rows("SELECT COUNT(*) FROM invitations WHERE superseded_at IS NULL") == [(0,)]  # links dead
    with shop.engine.connect() as connection:  # dated by the dispatch's clock, as the rest of it
        superseded = connection.execute(select(Invitation.superseded_at)).scalars().all()
    assert superseded == [MONDAY_9AM, MONDAY_9AM]

    shop = make_shop(store_url, auto_invite=True)  # on again
    invite(shop.engine, shop.config, shop.company, now=MONDAY_9AM, all_eligible=True, automatic=True)
    sent = shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM + timedelta(minutes=1)))
    assert sent.out == "mail: 2 sent, 0 failed, 0 to retry\n"
    assert sorted(recipients(smtp)) == ["c1@example.com", "c2@example.com"]
    assert shop.rows(statuses) == [("c1@example.com", "pending"), ("c2@example.com", "pending")]


# --- reminders whose invoices stopped being due while they waited ------------------------------

FRIDAY_EVENING, MONDAY_OPENING = utc("2026-11-20T23:00"), utc("2026-11-23T14:00")  # New York, 9-17


def test_a_reminder_whose_invoices_were_paid_while_it_waited_is_withdrawn(make_shop, store_url, smtp):
    """Planned on Friday evening, held for Monday's opening; over the weekend one customer pays
    its invoice, another is paused, a third pays one of its two invoices."""
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[0]
    )
    due = date(2026, 11, 1)
    customers = [customer(ref, f"Customer {ref}", f"c{ref}@example.com") for ref in ("1", "2", "3", "4")]
    invoices = [invoice("10", "1", due, "120.00"), invoice("20", "2", due, "80.00")]
    invoices += [
        invoice("30", "3", due, "50.00"),
        invoice("31", "3", due, "70.00"),
        invoice("40", "4", due, "9.00"),
    ]
    shop.sync(customers, invoices)
    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING))
    assert planned.code == 0, planned.err
    assert shop.rows("SELECT status FROM outbox") == [("queued",)] * 4

    shop.sync_changes([invoice("10", "1", due, "0.00"), invoice("30", "3", due, "0.00")])
    assert shop.cli("customer", "pause-reminders", COMPANY, "2").code == 0

    preview = shop.cli("mail", "dispatch", "--dry-run", "--now", iso(FRIDAY_EVENING)).out
    withdrawing = "[delivery window; no longer due: withdrawn unless that changes]"
    again = "[delivery window; some invoices no longer due: planned again without them unless that changes]"
    assert f"to c1@example.com: {iso(MONDAY_OPENING)} {withdrawing}" in preview
    assert f"to c2@example.com: {iso(MONDAY_OPENING)} {withdrawing}" in preview
    assert f"to c3@example.com: {iso(MONDAY_OPENING)} {again}" in preview
    assert f"to c4@example.com: {iso(MONDAY_OPENING)} [delivery window]\n" in preview

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == (
        "mail: 1 sent, 0 failed, 0 to retry, 2 reminder(s) withdrawn: no longer due,"
        " 1 to plan again without invoices no longer due\n"
    )
    assert recipients(smtp) == ["c4@example.com"]
    assert shop.rows("SELECT recipient, status FROM outbox ORDER BY recipient") == [
        ("c1@example.com", "dropped"), ("c2@example.com", "dropped"), ("c3@example.com", "dropped"),
        ("c4@example.com", "sent"),
    ]  # fmt: skip
    reasons = shop.rows(
        "SELECT recipient, last_error FROM outbox WHERE status = 'dropped' ORDER BY recipient"
    )
    assert [reason.split(":")[1].strip() for _, reason in reasons] == [
        "none of its invoices is due any more"
        " (paid, voided, hidden or paused, or the offset is no longer sent)",
    ] * 2 + ["some of its invoices are no longer due; the others are planned again"]
    assert shop.rows("SELECT invoice_ref, status FROM reminder_ledger ORDER BY invoice_ref") == [
        ("40", "sent"),
    ]  # fmt: skip  # 31 is planned again; 10, 20 and 30, never sent, are released

    replanned = shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING))
    assert replanned.code == 0, replanned.err
    sent = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert sent.out == "mail: 1 sent, 0 failed, 0 to retry\n"
    assert recipients(smtp) == ["c3@example.com", "c4@example.com"]
    body = smtp.received[-1].message.get_body(("plain",)).get_content()
    assert "INV-31" in body and "INV-30" not in body  # only what is still owed
    later = MONDAY_OPENING + timedelta(hours=1)
    assert shop.cli("reminders", "plan", "--now", iso(later)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(later)).out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert len(smtp.received) == 2  # each (invoice, offset) once, ever


SATURDAY_NOON, SUNDAY_NOON = utc("2026-11-21T17:00"), utc("2026-11-22T17:00")  # New York


def test_a_reminder_held_for_the_window_goes_to_the_addresses_the_books_hold_when_it_leaves(
    make_shop, store_url, smtp
):
    """Planned on Friday evening to the customer's address; over the weekend the books replace
    it (the old one may belong to someone else now). Monday's email goes to the new one only."""
    shop = make_shop(store_url, delivery_days=WEEKDAYS, reminder_offsets_days=[0])
    due = date(2026, 11, 1)
    customers = [
        customer("1", "Customer 1", "old@example.com"),
        customer("2", "Customer 2", "c2@example.com"),
    ]
    shop.sync(customers, [invoice("10", "1", due, "120.00"), invoice("20", "2", due, "80.00")])
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).code == 0
    shop.sync_changes([customer("1", "Customer 1", "new@example.com")])

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == (
        "mail: 1 sent, 0 failed, 0 to retry, 1 to plan again to the customer's current addresses\n"
    )
    assert recipients(smtp) == ["c2@example.com"]
    replanned = shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING))
    assert "1 -> new@example.com" in replanned.out, replanned.out
    assert shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).code == 0

    assert recipients(smtp) == ["c2@example.com", "new@example.com"]
    assert shop.rows("SELECT invoice_ref, offset_days, status FROM reminder_ledger ORDER BY invoice_ref") == [
        ("10", 0, "sent"),
        ("20", 0, "sent"),
    ]


def test_a_held_reminder_whose_invoice_got_a_later_due_date_is_not_sent_as_past_due(
    make_shop, store_url, smtp
):
    """Planned on Friday evening (due Nov 1, offset +7); over the weekend the books extend the
    invoice to Dec 15. Monday's email would have called it past due; it is taken back, and the
    +7 reminder goes a week after the new due date."""
    shop = make_shop(store_url, delivery_days=WEEKDAYS, reminder_offsets_days=[0, 7])
    shop.sync(
        [customer("1", "Customer 1", "c1@example.com")], [invoice("10", "1", date(2026, 11, 1), "120.00")]
    )
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).code == 0
    shop.sync_changes([invoice("10", "1", date(2026, 12, 15), "120.00")])

    preview = shop.cli("mail", "dispatch", "--dry-run", "--now", iso(MONDAY_OPENING)).out
    assert "[due now; an invoice it lists is due later now: withdrawn unless that changes]" in preview
    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == "mail: 0 sent, 0 failed, 0 to retry, 1 withdrawn: an invoice is due later now\n"
    assert "enqueued 0 reminder email(s)" in shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).out
    assert smtp.received == []

    week_after = utc("2026-12-22T15:00")  # Tue 10:00 EST
    assert "INV-10 (+7d)" in shop.cli("reminders", "plan", "--now", iso(week_after)).out
    assert shop.cli("mail", "dispatch", "--now", iso(week_after)).code == 0
    [received] = smtp.received
    assert "due Dec 15, 2026" in received.message.get_body(("plain",)).get_content()


def test_reminders_held_from_different_days_reach_their_customer_as_one_email(make_shop, store_url, smtp):
    """Saturday's and Sunday's reminders both wait for Monday's opening: a customer with one of
    each gets one email listing both invoices (SPEC: all reminders due for one customer at the
    same time go out as one email), not two at 9:00. A reminder already tried goes as it is."""
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[0]
    )
    saturday, sunday = date(2026, 11, 21), date(2026, 11, 22)
    customers = [customer(ref, f"Customer {ref}", f"c{ref}@example.com") for ref in ("1", "2", "3")]
    invoices = [invoice("10", "1", saturday, "120.00"), invoice("11", "1", sunday, "30.00")]
    invoices += [invoice("20", "2", saturday, "80.00")]
    invoices += [invoice("30", "3", saturday, "50.00"), invoice("31", "3", sunday, "70.00")]
    shop.sync(customers, invoices)
    for moment in (SATURDAY_NOON, SUNDAY_NOON):
        planned = shop.cli("reminders", "plan", "--now", iso(moment))
        assert planned.code == 0, planned.err
    assert [r for (r,) in shop.rows("SELECT recipient FROM outbox ORDER BY id")] == [
        "c1@example.com", "c2@example.com", "c3@example.com", "c1@example.com", "c3@example.com",
    ]  # fmt: skip
    # c3's Saturday reminder met a temporary refusal on an earlier attempt: it may have reached someone
    tried = shop.scalar("SELECT min(id) FROM outbox WHERE recipient = 'c3@example.com'")
    with shop.engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE outbox SET attempts = 1 WHERE id = {int(tried)}")

    preview = shop.cli("mail", "dispatch", "--dry-run", "--now", iso(SUNDAY_NOON)).out
    together = (
        "[delivery window; one of several for this customer: planned again as one email unless that changes]"
    )
    assert preview.count(f"to c1@example.com: {iso(MONDAY_OPENING)} {together}") == 2
    assert preview.count(f"to c3@example.com: {iso(MONDAY_OPENING)} [delivery window]\n") == 2

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == "mail: 3 sent, 0 failed, 0 to retry, 2 to plan again as one email per customer\n"
    assert recipients(smtp) == ["c2@example.com", "c3@example.com", "c3@example.com"]
    reasons = shop.rows("SELECT last_error FROM outbox WHERE status = 'dropped'")
    assert [reason for (reason,) in reasons] == [
        "withdrawn before sending: planned again with the customer's other reminders due now, as one email"
    ] * 2
    assert shop.rows("SELECT invoice_ref FROM reminder_ledger ORDER BY invoice_ref") == [
        ("20",), ("30",), ("31",),
    ]  # fmt: skip  # 10 and 11 are planned again

    replanned = shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING))
    assert replanned.code == 0, replanned.err
    assert (
        shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).out
        == "mail: 1 sent, 0 failed, 0 to retry\n"
    )
    assert [address for r in smtp.received for address in r.rcpt_tos].count("c1@example.com") == 1
    body = smtp.received[-1].message.get_body(("plain",)).get_content()
    assert "INV-10" in body and "INV-11" in body
    assert shop.rows("SELECT invoice_ref, status FROM reminder_ledger ORDER BY invoice_ref") == [
        ("10", "sent"), ("11", "sent"), ("20", "sent"), ("30", "sent"), ("31", "sent"),
    ]  # fmt: skip
    later = MONDAY_OPENING + timedelta(hours=1)
    assert shop.cli("reminders", "plan", "--now", iso(later)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(later)).out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert len(smtp.received) == 4  # each (invoice, offset) once, ever


MORE_DUE = [  # Sunday's reminder lists the first invoice; on Monday the last one's offset 0 is due
    pytest.param(
        [invoice("10", "1", date(2026, 11, 23), "120.00")],
        [("10", -1, "skipped"), ("10", 0, "sent")],
        id="a-later-offset-of-its-invoice",
    ),
    pytest.param(
        [invoice("10", "1", date(2026, 11, 22), "120.00"), invoice("11", "1", date(2026, 11, 23), "30.00")],
        [("10", -1, "skipped"), ("10", 0, "sent"), ("11", -1, "skipped"), ("11", 0, "sent")],
        id="another-invoice-of-its-customer",
    ),
]


@pytest.mark.parametrize(("invoices", "ledger"), MORE_DUE)
def test_a_held_reminder_goes_as_one_email_with_what_fell_due_before_planning_ran_again(
    make_shop, store_url, smtp, invoices, ledger
):
    """Sunday's reminder waits for Monday's opening; on Monday more is due for its customer (the
    invoice's due date came, or another invoice's). Dispatched before any planning ran on Monday
    (an admin's `mail dispatch`, or the daemon's dispatcher ahead of its planner), Sunday's
    reminder went alone and Monday's followed a minute later: two emails, the first for an
    offset the catch-up rule skips. It is planned again with the rest, as one email."""
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[-1, 0]
    )
    shop.sync([customer("1", "Customer 1", "c1@example.com")], invoices)
    assert shop.cli("reminders", "plan", "--now", iso(SUNDAY_NOON)).code == 0

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == "mail: 0 sent, 0 failed, 0 to retry, 1 to plan again as one email per customer\n"
    # an admin (or cron) that plans once a day is told they wait for the next planning
    assert "Note: the reminders taken back go once `arsync reminders plan` runs again" in opened.err
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).code == 0
    later = MONDAY_OPENING + timedelta(minutes=1)
    sent = shop.cli("mail", "dispatch", "--now", iso(later))
    assert (sent.out, sent.err) == ("mail: 1 sent, 0 failed, 0 to retry\n", "")

    [received] = smtp.received
    body = received.message.get_body(("plain",)).get_content()
    assert all(f"INV-{ref}" in body for ref, _, _ in ledger)
    assert shop.rows("SELECT invoice_ref, offset_days, status FROM reminder_ledger ORDER BY 1, 2") == ledger
    assert shop.cli("reminders", "plan", "--now", iso(later)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(later)).out == "mail: 0 sent, 0 failed, 0 to retry\n"


@pytest.mark.parametrize(
    ("offsets", "reminded_at_7"),
    [
        pytest.param("[]", False, id="reminders-turned-off"),
        pytest.param("[7]", True, id="its-offset-removed"),
    ],
)
def test_a_held_reminder_of_an_offset_the_company_no_longer_sends_is_withdrawn(
    make_shop, store_url, smtp, offsets, reminded_at_7
):
    """Planned on Friday evening for Monday's opening; over the weekend the admin turns reminders
    off (`reminder_offsets_days = []`), or takes that offset out of the list. Monday's email went
    all the same. It is withdrawn, as automatic invitations are once `auto_invite` is turned off,
    and its pair released: never sent, it is due again only if the offset comes back (then the
    catch-up rule sends the latest offset due)."""
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[0, 7]
    )
    shop.sync(
        [customer("1", "Customer 1", "c1@example.com")], [invoice("10", "1", date(2026, 11, 20), "9.00")]
    )
    assert "INV-10 (+0d)" in shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).out
    text = shop.path.read_text(encoding="utf-8")
    shop.path.write_text(text.replace("reminder_offsets_days = [0, 7]", f"reminder_offsets_days = {offsets}"))

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == "mail: 0 sent, 0 failed, 0 to retry, 1 reminder(s) withdrawn: no longer due\n"
    assert shop.rows("SELECT invoice_ref, offset_days, status FROM reminder_ledger") == []
    week_later = MONDAY_OPENING + timedelta(days=4)  # Friday the 27th, offset 7
    assert ("INV-10 (+7d)" in shop.cli("reminders", "plan", "--now", iso(week_later)).out) == reminded_at_7
    assert shop.cli("mail", "dispatch", "--now", iso(week_later)).code == 0
    assert len(smtp.received) == int(reminded_at_7)  # the offset still configured, and only it


def test_a_reminder_whose_invoice_was_paid_in_part_while_it_waited_asks_for_what_is_owed(
    make_shop, store_url, smtp
):
    """Planned on Friday evening with the balance of that day; paid in part over the weekend,
    the invoice is still due, and Monday's email asks for the balance left, not Friday's. One
    already tried goes as it was rendered: it may have reached someone."""
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[0]
    )
    due = date(2026, 11, 1)
    customers = [customer(ref, f"Customer {ref}", f"c{ref}@example.com") for ref in ("1", "2", "3")]
    invoices = [
        invoice("10", "1", due, "120.00"),
        invoice("20", "2", due, "80.00"),
        invoice("30", "3", due, "90.00"),
    ]
    shop.sync(customers, invoices)
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).code == 0
    assert shop.rows("SELECT invoice_ref, balance FROM reminder_ledger ORDER BY invoice_ref") == [
        ("10", 1200000), ("20", 800000), ("30", 900000),
    ] if store_url.startswith("sqlite") else [
        ("10", Decimal("120.0000")), ("20", Decimal("80.0000")), ("30", Decimal("90.0000")),
    ]  # fmt: skip  # what each reminder was rendered with (SQLite keeps ten-thousandths)
    tried = shop.scalar("SELECT id FROM outbox WHERE recipient = 'c3@example.com'")
    with shop.engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE outbox SET attempts = 1 WHERE id = {int(tried)}")

    partly_paid = [invoice("10", "1", due, "120.00"), invoice("30", "3", due, "90.00")]
    partly_paid = [replace(i, balance=Decimal("70.00")) for i in partly_paid]
    shop.sync_changes(partly_paid)

    preview = shop.cli("mail", "dispatch", "--dry-run", "--now", iso(FRIDAY_EVENING)).out
    note = "a balance changed since it was rendered: planned again with it unless that changes"
    assert f"to c1@example.com: {iso(MONDAY_OPENING)} [delivery window; {note}]" in preview
    assert f"to c2@example.com: {iso(MONDAY_OPENING)} [delivery window]\n" in preview
    assert f"to c3@example.com: {iso(MONDAY_OPENING)} [delivery window]\n" in preview

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == "mail: 2 sent, 0 failed, 0 to retry, 1 to plan again with today's balances\n"
    assert recipients(smtp) == ["c2@example.com", "c3@example.com"]
    assert shop.scalar("SELECT last_error FROM outbox WHERE status = 'dropped'") == (
        "withdrawn before sending: an invoice it lists has another balance now; planned again with it"
    )
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).code == 0
    assert (
        shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).out
        == "mail: 1 sent, 0 failed, 0 to retry\n"
    )
    assert recipients(smtp) == ["c1@example.com", "c2@example.com", "c3@example.com"]
    bodies = {r.rcpt_tos[0]: r.message.get_body(("plain",)).get_content() for r in smtp.received}
    assert "70.00" in bodies["c1@example.com"] and "120.00" not in bodies["c1@example.com"]
    assert "90.00" in bodies["c3@example.com"]  # tried before: as rendered on Friday
    later = MONDAY_OPENING + timedelta(hours=1)
    assert shop.cli("reminders", "plan", "--now", iso(later)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(later)).out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert len(smtp.received) == 3  # each (invoice, offset) once, ever


def test_reminders_of_a_record_the_books_changed_unreadably_are_held_until_a_sync_reads_it(
    make_shop, store_url, smtp
):
    """Planned on Friday evening; over the weekend the books changed invoice 10 in a form the
    connector quarantines (paid, perhaps: the store cannot tell), so its stored balance may be
    one no longer owed. Monday's reminder for it is taken back, its pair released, and it is
    not planned again until a sync reads the invoice. A customer quarantined holds its
    invoices' reminders the same way. The other customer's reminder goes as planned."""
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[0]
    )
    due = date(2026, 11, 1)
    customers = [customer(ref, f"Customer {ref}", f"c{ref}@example.com") for ref in ("1", "2", "3")]
    shop.sync(
        customers,
        [
            invoice("10", "1", due, "120.00"),
            invoice("20", "2", due, "80.00"),
            invoice("30", "3", due, "90.00"),
        ],
    )
    shop.sync_changes([], unreadable=[Quarantined("customers", "3", "an unreadable field")])
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).code == 0
    assert shop.rows("SELECT recipient FROM outbox ORDER BY recipient") == [
        ("c1@example.com",),
        ("c2@example.com",),
    ]

    unreadable = Quarantined("invoices", "10", "CurrencyRef is not a currency code: '840'")
    shop.sync_changes([], unreadable=[unreadable])
    preview = shop.cli("mail", "dispatch", "--dry-run", "--now", iso(FRIDAY_EVENING)).out
    assert f"to c1@example.com: {iso(MONDAY_OPENING)} [delivery window; {HELD_NOTE}]" in preview

    opened = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert opened.out == (
        "mail: 1 sent, 0 failed, 0 to retry, "
        "1 withdrawn: an invoice or its customer is quarantined (`arsync status`)\n"
    )
    assert recipients(smtp) == ["c2@example.com"]
    assert shop.scalar("SELECT last_error FROM outbox WHERE status = 'dropped'") == HELD
    assert shop.rows("SELECT invoice_ref FROM reminder_ledger ORDER BY invoice_ref") == [("20",)]
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).code == 0
    assert (
        shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).out
        == "mail: 0 sent, 0 failed, 0 to retry\n"
    )

    shop.sync_changes([invoice("10", "1", due, "120.00"), customers[2]])  # read again, both
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).code == 0
    sent = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert sent.out == "mail: 2 sent, 0 failed, 0 to retry\n"
    assert recipients(smtp) == ["c1@example.com", "c2@example.com", "c3@example.com"]


def test_a_reminder_the_mail_server_never_got_goes_as_one_email_with_the_next(make_shop, store_url, smtp):
    """Thursday's reminder meets a mail server that is down; it waits, queued. On Friday the
    customer's next invoice falls due and is planned. The server never got Thursday's, so both
    are planned again as one email (SPEC 2: all reminders due for one customer at the same time
    go out as one email); a try that reached the server would go as it is."""
    shop = make_shop(store_url, reminder_offsets_days=[0])
    thursday = FRIDAY_10AM - timedelta(days=1)
    first = invoice("10", "1", thursday.date(), "9.00")
    shop.sync([customer("1", "Customer 1", "c1@example.com")], [first])
    assert shop.cli("reminders", "plan", "--now", iso(thursday)).code == 0
    smtp.stop()
    down = shop.cli("mail", "dispatch", "--now", iso(thursday))
    assert (down.code, down.out) == (1, "mail: 0 sent, 0 failed, 1 to retry\n"), down.err

    shop.sync_changes([invoice("20", "1", FRIDAY_10AM.date(), "5.00")])
    assert "enqueued 1 reminder email(s)" in shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).out
    smtp.start()  # back, same port
    merged = shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM))
    assert merged.out == "mail: 0 sent, 0 failed, 0 to retry, 2 to plan again as one email per customer\n"
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0
    sent = shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM))
    assert sent.out == "mail: 1 sent, 0 failed, 0 to retry\n", sent.err

    [received] = smtp.received
    body = received.message.get_body(("plain",)).get_content()
    assert "INV-10" in body and "INV-20" in body
    assert shop.rows("SELECT invoice_ref, offset_days, status FROM reminder_ledger ORDER BY 1") == [
        ("10", 0, "sent"),
        ("20", 0, "sent"),
    ]
