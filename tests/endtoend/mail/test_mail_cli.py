"""Invitations, request access, reminders and SMTP outages through the `arsync` CLI, with
mail asserted as a real SMTP server on loopback received it (issue 6 acceptance)."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text

import sync.commands.mail
import sync.mail
from mailer.render import render_invitation
from mailer.uninvite import REVOKED
from portal_rules.request_access import PUBLIC_ANSWER
from tests.endtoend.mail.conftest import COMPANY, FRIDAY_10AM, INVITE_LINK, PORTAL, customer, invoice, iso
from tests.mailer.smtp_server import Refusing
from tests.mailer.test_dispatch_stop import Slow

SATURDAY_NIGHT = datetime.fromisoformat("2026-11-22T04:30:00+00:00")  # Sat 23:30 in New York (EST)


def plain(message) -> str:
    return message.get_body(("plain",)).get_content()


def html(message) -> str:
    return message.get_body(("html",)).get_content()


def html_rows(message) -> list[tuple[str, ...]]:
    """The invoice table of a reminder's HTML part, cell texts per row."""
    rows = re.findall(r'<tr class="invoice".*?</tr>', html(message), re.S)
    return [
        tuple(re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S))
        for row in rows
    ]


def accounts(shop) -> list[tuple[str, str, str]]:
    return shop.rows(
        "SELECT customer_ref, email, status FROM portal_accounts WHERE company_id = :c "
        "ORDER BY customer_ref, email",
        c=COMPANY,
    )


# --- 1. manual invitations ------------------------------------------------------------------


def test_manual_invite_on_saturday_night_is_delivered_at_once_and_accepted_once(make_shop, store_url, smtp):
    shop = make_shop(store_url)
    shop.sync(
        [
            customer("1", "Café Müller", " AP@Cafe.example ", "owner@cafe.example"),
            customer("2", "Globex", "ap@globex.example"),
        ],
        [],
    )

    invited = shop.cli("invite", COMPANY, "--customer", "1", "--now", iso(SATURDAY_NIGHT))

    assert invited.code == 0, invited.err
    assert "acme: 1 invitation(s) queued" in invited.out
    assert "mail: 1 sent, 0 failed, 0 to retry" in invited.out
    [received] = smtp.received
    message = received.message
    assert received.rcpt_tos == ["ap@cafe.example"]  # the primary contact only
    assert [a.addr_spec for a in message["To"].addresses] == ["ap@cafe.example"]
    assert message["Subject"] == "Welcome to the Acme Landscaping customer portal"
    token = INVITE_LINK.search(plain(message)).group(1)
    assert f'href="{PORTAL}/invite/{token}"' in html(message)
    assert shop.rows("SELECT kind, automatic, status, message_id FROM outbox") == [
        ("invitation", False, "sent", message["Message-ID"])
    ]
    assert accounts(shop) == [
        ("1", "ap@cafe.example", "pending"),
        ("1", "owner@cafe.example", "not_invited"),
        ("2", "ap@globex.example", "not_invited"),
    ]

    later = iso(SATURDAY_NIGHT + timedelta(minutes=10))
    accepted = shop.cli("portal", "accept", COMPANY, token, "--now", later)
    assert (accepted.code, accepted.out) == (0, "invitation accepted: portal access enabled\n")
    assert accounts(shop)[0] == ("1", "ap@cafe.example", "enabled")

    again = shop.cli("portal", "accept", COMPANY, token, "--now", later)
    assert again.code == 1
    assert "invalid invitation token" in again.err
    assert accounts(shop)[0] == ("1", "ap@cafe.example", "enabled")
    assert len(smtp.received) == 1


def test_invite_all_eligible_covers_more_than_one_page(make_shop, sqlite_url, smtp):
    shop = make_shop(sqlite_url)
    eligible = [
        customer(f"{n:04d}", f"Customer {n}", f"c{n}@example.com", f"x{n}@example.com") for n in range(1001)
    ]
    not_eligible = [
        customer("9001", "Bad Address", "not-an-email"),
        customer("9002", "Gone Away", "gone@example.com", active=False),
    ]
    shop.sync(eligible + not_eligible, [])

    result = shop.cli("invite", COMPANY, "--all-eligible", "--now", iso(SATURDAY_NIGHT))

    assert result.code == 0, result.err
    assert "acme: 1001 invitation(s) queued" in result.out
    assert "mail: 1001 sent, 0 failed, 0 to retry" in result.out
    received = smtp.received
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(f"c{n}@example.com" for n in range(1001))
    assert all(len(r.rcpt_tos) == 1 for r in received)
    tokens = {INVITE_LINK.search(plain(r.message)).group(1) for r in received}
    assert len(tokens) == 1001
    assert not [t for t in tokens if t.startswith("-")]  # `portal accept COMPANY TOKEN` would see an option
    assert shop.rows("SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("sent", 1001)]
    assert shop.rows("SELECT status, COUNT(*) FROM portal_accounts GROUP BY status ORDER BY status") == [
        ("not_invited", 1002),  # the secondary contacts and the invalid address
        ("pending", 1001),
    ]


def test_invitations_are_composed_while_the_store_is_free_for_other_writers(
    make_shop, sqlite_url, smtp, monkeypatch
):
    """SQLite has one writer: a webhook or a portal request waits for it (less than a second).
    `invite --all-eligible` composes each batch's messages before the transaction that records
    it, so while a message is rendered another connection can take the write lock at once."""
    shop = make_shop(sqlite_url)
    shop.sync([customer(f"{n:03d}", f"Customer {n}", f"c{n}@example.com") for n in range(30)], [])
    store = sqlite_url.removeprefix("sqlite:///")
    free_while_rendering: list[bool] = []

    def render_and_look(*args, **kwargs):
        other = sqlite3.connect(store, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if a write transaction is open
            other.execute("ROLLBACK")
            free_while_rendering.append(True)
        except sqlite3.OperationalError:  # database is locked
            free_while_rendering.append(False)
        finally:
            other.close()
        return render_invitation(*args, **kwargs)

    monkeypatch.setattr(sync.mail, "render_invitation", render_and_look)
    result = shop.cli("invite", COMPANY, "--all-eligible", "--now", iso(FRIDAY_10AM))

    assert result.code == 0, result.err
    assert "acme: 30 invitation(s) queued" in result.out
    assert free_while_rendering == [True] * 30
    assert shop.rows("SELECT COUNT(*) FROM invitations") == [(30,)]


@pytest.mark.parametrize("meanwhile", ["disabled", "enabled", "pending"])
def test_a_contact_changed_while_a_bulk_invitation_runs_keeps_its_change(
    make_shop, store_url, smtp, monkeypatch, meanwhile
):
    """`invite --all-eligible` reads the contacts, then records each batch. A contact an admin
    disabled in between, one that accepted its earlier invitation, or one another process
    invited meanwhile keeps its status, gets no second invitation and no mail."""
    shop = make_shop(store_url)
    shop.sync([customer(f"{n}", f"Customer {n}", f"c{n}@example.com") for n in range(1, 4)], [])
    changed = []

    def render_after_a_change(*args, **kwargs):
        if not changed:  # the contacts are read; their batch is not recorded yet
            with shop.engine.begin() as connection:
                connection.execute(
                    text("UPDATE contacts SET portal_status = :s WHERE email = 'c2@example.com'"),
                    {"s": meanwhile},
                )
            changed.append(meanwhile)
        return render_invitation(*args, **kwargs)

    monkeypatch.setattr(sync.mail, "render_invitation", render_after_a_change)
    result = shop.cli("invite", COMPANY, "--all-eligible", "--now", iso(FRIDAY_10AM))

    assert result.code == 0, result.err
    assert changed == [meanwhile]
    assert "not invited: customer 2 c2@example.com: its portal status changed meanwhile" in result.out
    assert "acme: 2 invitation(s) queued" in result.out
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["c1@example.com", "c3@example.com"]
    invited = shop.rows("SELECT email FROM invitations ORDER BY email")
    assert invited == [("c1@example.com",), ("c3@example.com",)]
    assert shop.rows("SELECT email, portal_status FROM contacts ORDER BY email") == [
        ("c1@example.com", "pending"),
        ("c2@example.com", meanwhile),
        ("c3@example.com", "pending"),
    ]


def test_a_manual_invitation_queued_for_a_retry_is_checked_again_before_it_leaves(make_shop, store_url, smtp):
    """`arsync invite` while the mail server is down queues the invitations for a retry. By the
    time it is back, an admin disabled one contact, the books replaced another's address and
    made a third customer inactive, and a fourth contact was enabled when its email accepted a
    sibling account's invitation. Only the invitation that can still be accepted goes out."""
    shop = make_shop(store_url)  # multi_account_portal: one login reaches every account of an email
    shop.sync(
        [
            customer("1", "Customer 1", "c1@example.com"),
            customer("2", "Customer 2", "c2@example.com"),
            customer("3", "Customer 3", "c3@example.com"),
            customer("4", "Customer 4", "shared@example.com"),
            customer("5", "Customer 5", "shared@example.com"),
            customer("6", "Customer 6", "c6@example.com"),
        ],
        [],
    )
    now = SATURDAY_NIGHT
    assert shop.cli("invite", COMPANY, "--customer", "4", "--now", iso(now)).code == 0
    [sibling] = smtp.received
    smtp.stop()
    for ref in ("1", "2", "3", "5", "6"):
        down = shop.cli("invite", COMPANY, "--customer", ref, "--now", iso(now))
        assert down.code == 0, down.err
        assert "mail: 0 sent, 0 failed, 1 to retry" in down.out

    disabled = shop.cli("portal", "disable", COMPANY, "--customer", "1", "--email", "c1@example.com")
    assert disabled.code == 0, disabled.err
    shop.sync_changes(
        [
            customer("2", "Customer 2", "new2@example.com"),
            customer("3", "Customer 3", "c3@example.com", active=False),
        ]
    )
    token = INVITE_LINK.search(plain(sibling.message)).group(1)
    assert shop.cli("portal", "accept", COMPANY, token, "--now", iso(now)).code == 0
    assert ("5", "shared@example.com", "enabled") in accounts(shop)

    smtp.start()  # back up, same port
    up = shop.cli("mail", "dispatch", "--now", iso(now + timedelta(minutes=5)))

    assert (
        up.out == "mail: 1 sent, 0 failed, 0 to retry, 4 invitation(s) withdrawn: can no longer be accepted\n"
    )
    assert [r.rcpt_tos for r in smtp.received] == [["shared@example.com"], ["c6@example.com"]]
    assert shop.rows("SELECT recipient, status FROM outbox ORDER BY id") == [
        ("shared@example.com", "sent"),
        ("c1@example.com", "dropped"),
        ("c2@example.com", "dropped"),
        ("c3@example.com", "dropped"),
        ("shared@example.com", "dropped"),
        ("c6@example.com", "sent"),
    ]
    reasons = {error for (error,) in shop.rows("SELECT last_error FROM outbox WHERE status = 'dropped'")}
    assert reasons == {REVOKED}


# --- 2. request access ------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["accepts", "refuses"])
def test_request_access_answers_alike_and_mails_only_a_known_contact_at_once(
    make_shop, store_url, smtp, server
):
    shop = make_shop(store_url)
    shop.sync([customer("1", "Café Müller", "ap@cafe.example")], [])
    if server == "refuses":  # a refusal must not give the answer away either
        smtp.stop()
        smtp.recorder = Refusing()
        smtp.start()
    now = iso(SATURDAY_NIGHT)  # outside the window: transactional mail ignores it

    unknown = shop.cli("portal", "request-access", COMPANY, "nobody@nowhere.example", "--now", now)
    assert shop.scalar("SELECT COUNT(*) FROM outbox") == 0
    known = shop.cli("portal", "request-access", COMPANY, "AP@cafe.example", "--now", now)

    assert (unknown.code, known.code) == (0, 0)
    assert known.out == unknown.out == PUBLIC_ANSWER + "\n"
    if server == "accepts":  # nothing on stderr tells them apart either (a refusal is logged
        assert known.err == unknown.err  # for the operator, who must see it)
    assert accounts(shop) == [("1", "ap@cafe.example", "pending")]
    [(status, recipient)] = shop.rows("SELECT status, recipient FROM outbox")
    assert recipient == "ap@cafe.example"
    if server == "accepts":
        [received] = smtp.received  # delivered while the command ran, on a Saturday night
        assert received.rcpt_tos == ["ap@cafe.example"]
        assert INVITE_LINK.search(plain(received.message))
        assert status == "sent"
    else:
        assert status == "failed"  # kept for `arsync status`, not lost


# --- 3. reminders -----------------------------------------------------------------------------


def reminder_world(shop) -> None:
    shop.sync(
        [
            customer("1", "Café Müller", "ap@cafe.example", "Billing@Cafe.example", "not-an-email"),
            customer("2", "Globex", "ap@globex.example"),
            customer("3", "Initech", "ar@initech.example"),
        ],
        [
            invoice("10", "1", date(2026, 10, 31), "120.00"),  # overdue: offset +14
            invoice("11", "1", date(2026, 11, 20), "80.50"),  # due today: offset 0
            invoice("12", "1", date(2026, 12, 30), "9.99"),  # nothing due yet
            invoice("13", "1", date(2026, 11, 1), "55.00", sent=False),  # never sent
            invoice("14", "1", date(2026, 11, 1), "66.00", voided=True),  # voided
            invoice("20", "2", date(2026, 11, 1), "40.00"),  # customer paused below
            invoice("30", "3", date(2026, 11, 17), "1234.5", currency="EUR"),
            invoice("31", "3", date(2026, 11, 16), "10.00", currency="EUR"),  # marked unsent below
        ],
    )


def test_reminders_plan_and_dispatch_one_email_per_customer(make_shop, store_url, smtp):
    shop = make_shop(store_url)
    reminder_world(shop)
    now = iso(FRIDAY_10AM)
    assert shop.cli("customer", "pause-reminders", COMPANY, "2").code == 0
    assert shop.cli("invoice", "mark-unsent", COMPANY, "31").code == 0

    before = shop.snapshot()
    dry_plan = shop.cli("reminders", "plan", "--dry-run", "--now", now)
    assert dry_plan.code == 0, dry_plan.err
    assert "acme: would enqueue 2 reminder email(s)" in dry_plan.out
    assert (
        f"  1 -> ap@cafe.example, billing@cafe.example at {now}: INV-10 (+14d), INV-11 (+0d)" in dry_plan.out
    )
    assert f"  3 -> ar@initech.example at {now}: INV-30 (+0d)" in dry_plan.out
    assert shop.snapshot() == before

    planned = shop.cli("reminders", "plan", "--now", now)
    assert planned.code == 0, planned.err
    assert "acme: enqueued 2 reminder email(s)" in planned.out

    queued = shop.snapshot()
    dry_dispatch = shop.cli("mail", "dispatch", "--dry-run", "--now", now)
    assert dry_dispatch.code == 0, dry_dispatch.err
    assert "2 message(s) queued" in dry_dispatch.out
    assert f"acme reminder (automatic) to ap@cafe.example, billing@cafe.example: {now} [due now]" in (
        dry_dispatch.out
    )
    assert shop.snapshot() == queued
    assert smtp.received == []

    sent = shop.cli("mail", "dispatch", "--now", now)
    assert (sent.code, sent.out) == (0, "mail: 2 sent, 0 failed, 0 to retry\n")

    by_recipients = {tuple(r.rcpt_tos): r.message for r in smtp.received}
    assert set(by_recipients) == {("ap@cafe.example", "billing@cafe.example"), ("ar@initech.example",)}
    cafe = by_recipients["ap@cafe.example", "billing@cafe.example"]
    assert cafe["Subject"] == "Past due: 2 open invoices from Acme Landscaping"
    assert html_rows(cafe) == [
        ("INV-10", "Oct 31, 2026", "120.00 USD", "Past Due"),
        ("INV-11", "Nov 20, 2026", "80.50 USD", ""),
    ]
    text = plain(cafe)
    lines = [line.strip() for line in text.splitlines()]
    assert "Invoice INV-10  due Oct 31, 2026  balance 120.00 USD  PAST DUE" in lines
    assert "Invoice INV-11  due Nov 20, 2026  balance 80.50 USD" in lines
    for never in ("INV-12", "INV-13", "INV-14", "INV-20"):
        assert never not in text and never not in html(cafe)
    assert PORTAL in text and f'href="{PORTAL}"' in html(cafe)
    initech = by_recipients["ar@initech.example",]
    assert initech["Subject"] == "Past due: 1 open invoice from Acme Landscaping"
    assert html_rows(initech) == [("INV-30", "Nov 17, 2026", "1,234.50 EUR", "Past Due")]
    assert "INV-31" not in plain(initech)

    later = iso(FRIDAY_10AM + timedelta(hours=1))
    assert "acme: enqueued 0 reminder email(s)" in shop.cli("reminders", "plan", "--now", later).out
    assert shop.cli("mail", "dispatch", "--now", later).out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert len(smtp.received) == 2


def test_a_customer_with_many_invoices_due_gets_one_reminder_listing_them_all(make_shop, store_url, smtp):
    """Sixty invoices due at once (a customer far behind, or the first sync of a long-unpaid
    account) make one email; on PostgreSQL the reminder's key once outgrew its 255-character
    column and the whole company's planning failed."""
    shop = make_shop(store_url, reminder_offsets_days=[0])
    invoices = [invoice(str(100_000 + n), "1", date(2026, 11, 1), "10.00") for n in range(60)]
    shop.sync([customer("1", "Cafe", "ap@cafe.example")], invoices)
    now = iso(FRIDAY_10AM)
    planned = shop.cli("reminders", "plan", "--now", now)
    assert (planned.code, planned.err) == (0, "")
    assert "acme: enqueued 1 reminder email(s)" in planned.out
    assert shop.cli("mail", "dispatch", "--now", now).out == "mail: 1 sent, 0 failed, 0 to retry\n"
    [only] = smtp.received
    assert len(html_rows(only.message)) == 60
    assert shop.scalar("SELECT count(*) FROM reminder_ledger WHERE status = 'sent'") == 60


# --- 6. SMTP down, then up --------------------------------------------------------------------


def test_an_invoice_due_on_the_calendars_first_day_blocks_no_reminder(make_shop, sqlite_url, smtp):
    """The books can hold a due date of 0001-01-01 (Xero's DateTime.MinValue); with a negative
    offset its reminder date lay before the calendar, and planning failed for the whole company
    ("unexpected error: OverflowError"), every minute, so nobody was reminded."""
    shop = make_shop(sqlite_url, reminder_offsets_days=[-3, 0])
    customers = [customer("1", "Old Books", "old@example.com"), customer("2", "Globex", "ap@globex.example")]
    shop.sync(
        customers, [invoice("10", "1", date(1, 1, 1), "1.00"), invoice("20", "2", date(2026, 11, 1), "2.00")]
    )

    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert planned.code == 0, planned.err
    assert "enqueued 2 reminder email(s)" in planned.out
    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM)).code == 0
    assert sorted(a for r in smtp.received for a in r.rcpt_tos) == ["ap@globex.example", "old@example.com"]


def test_invite_says_why_a_customer_named_has_nobody_to_invite(make_shop, sqlite_url, smtp):
    """An inactive customer's contacts exist in the books, but the portal does not show it: it
    was told "company has no contacts for customer", sending the admin to the books for
    contacts that are there. Each reason now says which it is, exit 2 naming the argument."""
    shop = make_shop(sqlite_url, import_inactive_customers=True)
    shop.sync(
        [
            customer("1", "Cafe", "ap@cafe.example"),
            customer("2", "Dormant", "old@dormant.example", active=False),
        ],
        [],
    )
    shop = make_shop(sqlite_url, import_inactive_customers=False)  # stored, no longer shown

    answers = {
        args: shop.cli("invite", COMPANY, *args, "--now", iso(FRIDAY_10AM))
        for args in (
            ("--customer", "2"),
            ("--customer", "9"),
            ("--customer", "1", "--email", "x@cafe.example"),
        )
    }

    assert {args: (a.code, a.err.splitlines()[-1]) for args, a in answers.items()} == {
        ("--customer", "2"): (
            2,
            "Error: Invalid value for '--customer': customer '2' of company 'acme' is not in the portal "
            "(inactive, and inactive customers are not imported)",
        ),
        ("--customer", "9"): (2, "Error: Invalid value for '--customer': company 'acme' has no customer '9'"),
        ("--customer", "1", "--email", "x@cafe.example"): (
            2,
            "Error: Invalid value for '--email': "
            "company 'acme' has no contact 'x@cafe.example' for customer '1'",
        ),
    }
    assert shop.scalar("SELECT count(*) FROM outbox") == 0 and smtp.received == []


def test_invite_names_a_disabled_or_conflicting_contact_for_what_it_is(make_shop, sqlite_url, smtp):
    """A contact in conflict (its email enabled for another customer, one login per email) or
    disabled by an admin was answered with the generic "not eligible (plan, inactive
    customer, ...)"; the status says exactly why, so the answer does."""
    shop = make_shop(sqlite_url, multi_account_portal=False)
    shared = "ap@shared.example"
    shop.sync(
        [
            customer("1", "North", shared),
            customer("2", "South", shared),
            customer("3", "Cafe", "c@cafe.example"),
        ],
        [],
    )
    assert shop.cli("invite", COMPANY, "--customer", "1", "--now", iso(FRIDAY_10AM)).code == 0
    token = INVITE_LINK.search(smtp.received[0].message.get_body(("plain",)).get_content()).group(1)
    assert shop.cli("portal", "accept", COMPANY, token, "--now", iso(FRIDAY_10AM)).code == 0
    assert shop.cli("portal", "disable", COMPANY, "--customer", "3", "--email", "c@cafe.example").code == 0

    conflicting = shop.cli("invite", COMPANY, "--customer", "2", "--now", iso(FRIDAY_10AM))
    disabled = shop.cli("invite", COMPANY, "--customer", "3", "--now", iso(FRIDAY_10AM))

    assert conflicting.out == (
        "not invited: customer 2 ap@shared.example: the email has portal access through another "
        "customer (see `arsync portal conflicts`)\nacme: 0 invitation(s) queued\n"
    )
    assert disabled.out == (
        "not invited: customer 3 c@cafe.example: portal access was disabled by an admin\n"
        "acme: 0 invitation(s) queued\n"
    )
    assert len(smtp.received) == 1


def test_a_company_with_no_reminder_offsets_is_sent_no_reminders(make_shop, sqlite_url, smtp):
    """`reminder_offsets_days = []` passed validation, then every planning failed with
    "unexpected error: ValueError: min() arg is an empty sequence" (the daemon logged a
    traceback every minute). No offsets: no reminder is ever due; a repeated offset is one."""
    customers = [customer("1", "Cafe", "ap@cafe.example")]
    invoices = [invoice("10", "1", date(2026, 11, 1), "10.00")]
    none = make_shop(sqlite_url, reminder_offsets_days=[])
    none.sync(customers, invoices)

    planned = none.cli("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert (planned.code, planned.err) == (0, "")
    assert "acme: enqueued 0 reminder email(s)" in planned.out
    assert none.scalar("SELECT count(*) FROM outbox") == 0
    assert none.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM)).code == 0
    assert smtp.received == []


def test_a_repeated_reminder_offset_is_one_reminder(make_shop, sqlite_url, smtp):
    shop = make_shop(sqlite_url, reminder_offsets_days=[0, 0, 7, 7])
    shop.sync([customer("1", "Cafe", "ap@cafe.example")], [invoice("10", "1", date(2026, 11, 1), "10.00")])

    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert (planned.code, planned.err) == (0, "")
    assert "acme: enqueued 1 reminder email(s)" in planned.out
    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM)).code == 0
    assert len(smtp.received) == 1
    ledger = "SELECT offset_days, status FROM reminder_ledger ORDER BY offset_days"
    assert shop.rows(ledger) == [(0, "skipped"), (7, "sent")]


def test_a_company_with_more_open_invoices_than_a_statement_takes_parameters_is_planned(
    make_shop, pg_url, smtp
):
    """Planning read the ledger with one IN list holding every open invoice's ref: past 65,535
    open invoices due, PostgreSQL refused the statement ("number of parameters must be between
    0 and 65535") and the company got no reminder at all, from the CLI or the daemon."""
    shop = make_shop(pg_url, reminder_offsets_days=[0])
    shop.sync(
        [customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in range(100)],
        [invoice(str(n), str(n % 100), date(2026, 11, 1), "1.00") for n in range(65_600)],
    )

    planned = shop.cli("reminders", "plan", "--dry-run", "--now", iso(FRIDAY_10AM))

    assert planned.code == 0, planned.err
    assert planned.out.startswith("acme: would enqueue 100 reminder email(s)")


def test_smtp_down_then_up_delivers_every_message_exactly_once(make_shop, store_url, smtp):
    shop = make_shop(store_url)
    shop.sync(
        [customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in range(1, 4)],
        [invoice(f"{n}0", str(n), date(2026, 11, 20), "10.00") for n in range(1, 4)],
    )
    now = FRIDAY_10AM
    smtp.stop()

    invited = shop.cli("invite", COMPANY, "--all-eligible", "--now", iso(now))
    assert invited.code == 0, invited.err  # the invitations are issued; their mail waits
    assert "mail: 0 sent, 0 failed, 3 to retry" in invited.out
    assert "Warning: the mail server could not be reached (cannot reach 127.0.0.1:" in invited.err
    assert "3 message(s) stay queued and are tried again every few minutes" in invited.err
    assert "acme: enqueued 3 reminder email(s)" in shop.cli("reminders", "plan", "--now", iso(now)).out
    down = shop.cli("mail", "dispatch", "--now", iso(now))
    assert (down.code, down.out) == (1, "mail: 0 sent, 0 failed, 3 to retry\n"), down.err
    assert "refused" not in down.err and "could not be reached" in down.err

    outbox = shop.rows("SELECT status, attempts, last_error FROM outbox")
    assert len(outbox) == 6
    assert {(status, attempts) for status, attempts, _ in outbox} == {("queued", 0)}  # not counted
    assert all("cannot reach 127.0.0.1" in error for _, _, error in outbox)
    [status] = json.loads(shop.cli("status", "--json").out)
    assert status["outbox"] == {"queued": 6}
    assert status["retrying"]["count"] == 6 and "cannot reach 127.0.0.1" in status["retrying"]["error"]
    assert "RETRYING:    6 message(s) not taken by the mail server yet" in shop.cli("status").out

    smtp.start()  # back up, same port
    in_backoff = shop.cli("mail", "dispatch", "--now", iso(now + timedelta(seconds=1)))
    assert in_backoff.out == "mail: 0 sent, 0 failed, 0 to retry\n"
    assert smtp.received == []

    up = shop.cli("mail", "dispatch", "--now", iso(now + timedelta(minutes=3)))
    assert (up.code, up.out) == (0, "mail: 6 sent, 0 failed, 0 to retry\n"), up.err
    again = shop.cli("mail", "dispatch", "--now", iso(now + timedelta(hours=2)))
    assert again.out == "mail: 0 sent, 0 failed, 0 to retry\n"

    stored_ids = {message_id for (message_id,) in shop.rows("SELECT message_id FROM outbox")}
    assert smtp.recorder.by_message_id() == dict.fromkeys(stored_ids, 1)
    [status] = json.loads(shop.cli("status", "--json").out)
    assert status["outbox"] == {"sent": 6} and status["retrying"] is None


# --- 7. header injection ----------------------------------------------------------------------

EVIL_NAME = "Evil Corp\r\nBcc: victim@evil.example\r\nX-Injected: yes <script>alert('x')</script>"
HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"}


def send_invitation(shop) -> None:
    result = shop.cli("invite", COMPANY, "--customer", "666", "--now", iso(FRIDAY_10AM))
    assert result.code == 0, result.err


def send_reminder(shop) -> None:
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM)).out.startswith("mail: 1 sent")


@pytest.mark.parametrize(
    ("send", "store"),
    [(send_reminder, "sqlite"), (send_invitation, "sqlite"), (send_reminder, "postgres")],
    ids=["reminder-sqlite", "invitation-sqlite", "reminder-postgres"],
)
def test_a_hostile_customer_name_injects_no_header_and_is_escaped_in_html(
    make_shop, request, smtp, send, store
):
    shop = make_shop(request.getfixturevalue(f"{'pg' if store == 'postgres' else 'sqlite'}_url"))
    shop.sync(
        [customer("666", EVIL_NAME, "ap@evil.example")], [invoice("1", "666", date(2026, 11, 20), "5.00")]
    )

    send(shop)

    [received] = smtp.received
    message = received.message
    assert received.rcpt_tos == ["ap@evil.example"]
    assert set(message.keys()) <= HEADERS
    assert not message.defects and not message["To"].defects
    [to] = message["To"].addresses  # one address: no part of the name became a recipient
    assert to.addr_spec == "ap@evil.example"
    assert "\r" not in to.display_name and "\n" not in to.display_name
    body = html(message)
    assert "<script>" not in body
    assert "Evil Corp Bcc: victim@evil.example X-Injected: yes &lt;script&gt;alert(" in body


# As a QuickBooks or Xero customer name could be spelled: plain ASCII, no CR/LF, no specials.
ENCODED_WORD_NAMES = {
    # base64 of "Acme\r\nReply-To: pay@attacker.example\r\nX-Note: "
    "reply-to": "=?utf-8?b?QWNtZQ0KUmVwbHktVG86IHBheUBhdHRhY2tlci5leGFtcGxlDQpYLU5vdGU6IA==?=",
    # quoted-printable of "Evil, victim@evil.example"
    "second-address": "=?utf-8?q?Evil=2C_victim=40evil=2Eexample?=",
}


@pytest.mark.parametrize("name", list(ENCODED_WORD_NAMES.values()), ids=list(ENCODED_WORD_NAMES))
@pytest.mark.parametrize("send", [send_reminder, send_invitation], ids=["reminder", "invitation"])
def test_a_customer_name_spelled_as_an_encoded_word_injects_no_header(
    make_shop, sqlite_url, smtp, send, name
):
    """The email package decodes an RFC 2047 encoded word in a display name and wrote the
    decoded text back raw: `To: Acme` and `Reply-To: pay@attacker.example`, or a second address."""
    shop = make_shop(sqlite_url)
    shop.sync([customer("666", name, "ap@cafe.example")], [invoice("1", "666", date(2026, 11, 20), "5.00")])

    send(shop)

    [received] = smtp.received
    message = received.message
    assert received.rcpt_tos == ["ap@cafe.example"]
    assert set(message.keys()) <= HEADERS
    [to] = message["To"].addresses
    assert to.addr_spec == "ap@cafe.example"
    assert "@" not in to.display_name and "\n" not in to.display_name  # the name's own text, not decoded


@pytest.mark.parametrize("name", list(ENCODED_WORD_NAMES.values()), ids=list(ENCODED_WORD_NAMES))
@pytest.mark.parametrize("send", [send_reminder, send_invitation], ids=["reminder", "invitation"])
def test_a_customer_name_spelled_as_an_encoded_word_in_a_subject_template_injects_no_header(
    make_shop, sqlite_url, smtp, tmp_path, send, name
):
    """A company's subject override naming the customer ("Invoices for {{ customer_name }}"):
    the email package decoded the encoded word in the Subject and wrote it back raw, so the
    message carried the name's `Reply-To: pay@attacker.example` as a header of its own."""
    folder = tmp_path / "acme-templates"
    folder.mkdir()
    for kind in ("reminder", "invitation"):
        (folder / f"{kind}.subject.txt").write_text("For {{ customer_name }}", encoding="utf-8")
    shop = make_shop(sqlite_url, template_dir=str(folder))
    shop.sync([customer("666", name, "ap@cafe.example")], [invoice("1", "666", date(2026, 11, 20), "5.00")])

    send(shop)

    [received] = smtp.received
    message = received.message
    assert received.rcpt_tos == ["ap@cafe.example"]
    assert set(message.keys()) <= HEADERS
    assert message["Subject"].startswith("For = ?utf-8?")  # the name's own text, not decoded
    assert "\n" not in message["Subject"] and "@" not in message["Subject"].replace("=40", "")


def test_dispatch_without_now_runs_on_the_clock(make_shop, sqlite_url, smtp):
    """No --now: the run is on the real clock, which it reads again between batches (that a
    window closing mid-run stops it is pinned with a scripted clock in
    tests/mailer/test_dispatch.py); here the window is open every hour of every day."""
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    shop = make_shop(sqlite_url, delivery_days=every_day, delivery_from_hour=0, delivery_to_hour=23)
    shop.sync(
        [customer("1", "Bob's Burgers", "bob@burgers.example")],
        [invoice("10", "1", date(2026, 1, 1), "9.00")],
    )
    assert shop.cli("reminders", "plan").code == 0
    sent = shop.cli("mail", "dispatch")
    assert sent.out == "mail: 1 sent, 0 failed, 0 to retry\n", sent.err
    assert [r.rcpt_tos for r in smtp.received] == [["bob@burgers.example"]]


def test_an_invitation_sent_as_the_window_closes_sends_no_reminder_after_it(
    make_shop, sqlite_url, smtp, monkeypatch
):
    """`arsync invite` hands everything due to the server, the reminders waiting for their window
    too. Its run read the time once: a backlog it began at 17:59:50 went on after the window
    closed at 18:00. Each automatic message is now checked as it leaves, as `mail dispatch` does;
    the invitation (manual) goes whatever the window."""
    shop = make_shop(sqlite_url)  # New York, weekdays 9-17
    smtp.stop()
    smtp.recorder = slow = Slow(delay=0.2)
    smtp.start()  # same port, now slow
    reminded = [customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in range(12)]
    shop.sync(
        [*reminded, customer("new", "Newcomer", "new@example.com")],
        [invoice(f"{n}0", str(n), date(2026, 11, 20), "10.00") for n in range(12)],
    )
    assert "enqueued 12 reminder email(s)" in shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).out
    last_seconds = datetime.fromisoformat("2026-11-20T22:59:50+00:00")  # Fri 17:59:50 in New York
    closed = last_seconds + timedelta(seconds=11)
    real = sync.commands.mail.parse_now

    def wall(value: str | None) -> datetime:  # the clock: the window closes as the first message lands
        return real(value) if value is not None else closed if slow.count() else last_seconds

    monkeypatch.setattr(sync.commands.mail, "parse_now", wall)
    invited = shop.cli("invite", COMPANY, "--customer", "new")
    assert invited.code == 0, invited.err

    to = [r.rcpt_tos for r in slow.received]
    assert ["new@example.com"] in to
    assert len(to) - 1 <= 4  # the reminders on their way as it closed (4 connections)
    queued = shop.rows("SELECT attempts FROM outbox WHERE kind = 'reminder' AND status = 'queued'")
    assert queued == [(0,)] * (12 - (len(to) - 1))  # handed back untouched, for Monday's opening
