# ruff: noqa: F811 - the e2e fixtures make_shop and smtp are imported, then requested by name
"""A message the SMTP server takes for some recipients and refuses at RCPT for others, through
`arsync mail dispatch` against a real SMTP server on loopback (aiosmtpd).

Pins down SPEC 5: a recipient refused for good (5xx) is recorded on the row with the server's
answer, the row still `sent` for the others; a recipient deferred (4xx) gets the same message
again later with the usual backoff, and the recipients who already have it never get it twice.
"""

from __future__ import annotations

from datetime import date, timedelta

from tests.endtoend.mail.conftest import (  # noqa: F401 - make_shop and smtp are fixtures
    COMPANY,
    FRIDAY_10AM,
    Shop,
    customer,
    invoice,
    iso,
    make_shop,
    smtp,
)
from tests.mailer.smtp_server import Recorder


class RefusesLinda(Recorder):
    """Accepts every recipient but linda@..., who gets `answer_for_linda` at RCPT (and is
    taken, like the others, once that answer is a 250)."""

    answer_for_linda = "550 5.1.1 No such user"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.answer_for_linda if address.startswith("linda@") else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer


def two_contact_reminder(make_shop, sqlite_url, smtp, answer: str) -> tuple[Shop, str]:
    """A reminder to two contacts dispatched once, linda answered `answer`: the shop, and
    what that dispatch printed."""
    smtp.stop()
    smtp.recorder = RefusesLinda()
    smtp.recorder.answer_for_linda = answer
    smtp.start()
    shop = make_shop(sqlite_url)
    shop.sync(
        [customer("1", "Bob's Burgers", "bob@burgers.example", "linda@burgers.example")],
        [invoice("10", "1", date(2026, 11, 1), "120.00")],
    )
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0
    sent = shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM))
    assert sent.code == 0, sent.err
    return shop, sent.out


def test_a_recipient_refused_for_good_is_recorded_with_the_servers_answer(make_shop, sqlite_url, smtp):
    """SPEC 5: "permanent ones recorded with the server's answer". When one of a reminder's
    two recipients is refused (550) the row is `sent` (the other has it) and its `last_error`
    says who was refused and what the server answered."""
    shop, _ = two_contact_reminder(make_shop, sqlite_url, smtp, "550 5.1.1 No such user")

    assert [r.rcpt_tos for r in smtp.received] == [["bob@burgers.example"]]
    [(status, last_error)] = shop.rows("SELECT status, last_error FROM outbox")
    assert status == "sent"
    assert last_error is not None and "linda@burgers.example: 550 5.1.1 No such user" in last_error


def test_a_recipient_deferred_with_a_4xx_is_tried_again(make_shop, sqlite_url, smtp):
    """SPEC 5: "transient SMTP errors retried with backoff"; SPEC 8: "No mail is lost when the
    SMTP server is down or refuses". A 450 (greylisting) for one of two recipients: that
    contact gets the reminder on a later run, and the other does not get it a second time."""
    shop, _ = two_contact_reminder(make_shop, sqlite_url, smtp, "450 4.2.0 Greylisted, try again later")
    smtp.recorder.answer_for_linda = "250 OK"  # linda's server takes mail again

    for hours in (1, 2, 6, 24):
        assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM + timedelta(hours=hours))).code == 0

    delivered = sorted(address for r in smtp.received for address in r.rcpt_tos)
    assert delivered == ["bob@burgers.example", "linda@burgers.example"]


def test_the_deferred_recipient_alone_waits_for_the_retry_backoff(make_shop, sqlite_url, smtp):
    """Between the 450 and the retry, the row is queued again for linda only, not before its
    backoff, with the deferral noted; once she takes it, the one message is `sent`, with the
    Message-ID bob got."""
    shop, printed = two_contact_reminder(make_shop, sqlite_url, smtp, "450 4.2.0 Greylisted, try again later")

    assert printed == ("mail: 0 sent, 0 failed, 1 to retry (1 of them delivered to their other recipients)\n")
    [(status, recipient, last_error)] = shop.rows("SELECT status, recipient, last_error FROM outbox")
    assert (status, recipient) == ("queued", "linda@burgers.example")
    assert "linda@burgers.example: 450 4.2.0 Greylisted, try again later" in last_error
    smtp.recorder.answer_for_linda = "250 OK"
    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM)).code == 0
    assert len(smtp.received) == 1  # not yet: the retry waits for its backoff

    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM + timedelta(hours=1))).code == 0

    assert [r.rcpt_tos for r in smtp.received] == [["bob@burgers.example"], ["linda@burgers.example"]]
    assert len({r.message["Message-ID"] for r in smtp.received}) == 1
    assert shop.rows("SELECT status, last_error FROM outbox") == [("sent", None)]


class RefusesGeneDefersLinda(RefusesLinda):
    """bob@ takes it, gene@ is refused for good, linda@ gets `answer_for_linda`."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("gene@"):
            return "550 5.1.1 No such user"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def test_a_refusal_for_good_stays_recorded_once_the_deferred_recipient_has_it(make_shop, sqlite_url, smtp):
    """Three recipients: one served, one refused for good (550), one deferred (450). The row is
    narrowed to the deferred one; when she gets it, the row is `sent` and still says that gene
    was refused (he never got the reminder), not only what its last attempt saw."""
    smtp.stop()
    smtp.recorder = RefusesGeneDefersLinda()
    smtp.recorder.answer_for_linda = "450 4.2.0 Greylisted, try again later"
    smtp.start()
    shop = make_shop(sqlite_url)
    emails = ("bob@burgers.example", "gene@burgers.example", "linda@burgers.example")
    shop.sync([customer("1", "Bob's Burgers", *emails)], [invoice("10", "1", date(2026, 11, 1), "120.00")])
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM)).code == 0
    [(status, note)] = shop.rows("SELECT status, last_error FROM outbox")
    assert status == "queued" and "gene@burgers.example: 550 5.1.1 No such user" in note
    assert "linda@burgers.example: 450 4.2.0 Greylisted" in note

    smtp.recorder.answer_for_linda = "250 OK"
    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM + timedelta(hours=1))).code == 0

    assert [r.rcpt_tos for r in smtp.received] == [["bob@burgers.example"], ["linda@burgers.example"]]
    assert shop.rows("SELECT status, last_error FROM outbox") == [
        ("sent", "refused: gene@burgers.example: 550 5.1.1 No such user")
    ]


def deferring_linda(smtp) -> None:
    """The loopback server, restarted to answer linda@ with a 450 (greylisting)."""
    smtp.stop()
    smtp.recorder = RefusesLinda()
    smtp.recorder.answer_for_linda = "450 4.2.0 Greylisted, try again later"
    smtp.start()


def test_a_reminder_deferred_then_paid_is_withdrawn_not_sent(make_shop, sqlite_url, smtp):
    """Her only address is deferred (450): the reminder waits for its retry. Meanwhile the
    invoice is paid; at the retry the reminder is dropped, not sent, and its ledger row stays
    `sent` (a tried message may have reached someone: nothing of it is planned again)."""
    deferring_linda(smtp)
    shop = make_shop(sqlite_url)
    due = date(2026, 11, 1)
    shop.sync([customer("1", "Linda's", "linda@burgers.example")], [invoice("10", "1", due, "120.00")])
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0
    first = shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM))
    assert first.out == "mail: 0 sent, 0 failed, 1 to retry\n"

    ledger = shop.rows("SELECT invoice_ref, offset_days, status FROM reminder_ledger ORDER BY offset_days")
    assert [status for *_, status in ledger].count("sent") == 1  # the offset this reminder carries
    shop.sync_changes([invoice("10", "1", due, "0.00")])
    smtp.recorder.answer_for_linda = "250 OK"
    retry = shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM + timedelta(hours=1)))

    assert retry.out == "mail: 0 sent, 0 failed, 0 to retry, 1 reminder(s) withdrawn: no longer due\n"
    assert smtp.received == []
    assert shop.rows("SELECT status, attempts FROM outbox") == [("dropped", 1)]
    assert (
        shop.rows("SELECT invoice_ref, offset_days, status FROM reminder_ledger ORDER BY offset_days")
        == ledger
    )


def test_a_resent_partly_delivered_reminder_is_not_planned_again(make_shop, sqlite_url, smtp):
    """bob@ gets the reminder for invoices 30 and 31; linda@ is deferred, then refused for good,
    and the row fails. Invoice 30 is paid, and an admin resends the message (attempts back to
    0). It was delivered to bob: it must not be taken back and planned again (bob would get 31
    twice); it goes to linda as it was stored."""
    deferring_linda(smtp)
    shop = make_shop(sqlite_url)
    due = date(2026, 11, 1)
    emails = ("bob@burgers.example", "linda@burgers.example")
    shop.sync(
        [customer("1", "Bob's Burgers", *emails)],
        [invoice("30", "1", due, "50.00"), invoice("31", "1", due, "70.00")],
    )
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(FRIDAY_10AM)).code == 0
    smtp.recorder.answer_for_linda = "550 5.1.1 No such user"
    later = FRIDAY_10AM + timedelta(hours=2)
    assert shop.cli("mail", "dispatch", "--now", iso(later)).code == 1  # refused for good: failed
    [(row_id, status)] = shop.rows("SELECT id, status FROM outbox")
    assert status == "failed"

    shop.sync_changes([invoice("30", "1", due, "0.00")])
    smtp.recorder.answer_for_linda = "250 OK"
    assert shop.cli("mail", "resend", COMPANY, str(row_id)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(later)).out == "mail: 1 sent, 0 failed, 0 to retry\n"
    assert shop.cli("reminders", "plan", "--now", iso(later)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(later)).out == "mail: 0 sent, 0 failed, 0 to retry\n"

    delivered = sorted(address for r in smtp.received for address in r.rcpt_tos)
    assert delivered == ["bob@burgers.example", "linda@burgers.example"]  # each once
    assert len({r.message["Message-ID"] for r in smtp.received}) == 1
