from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.outbox import enqueue, parse
from mailer.outgoing import Outgoing
from mailer.render import render_invitation, render_reminder
from store.tables import Outbox
from tests.mailer.conftest import NOW


def test_enqueue_stores_the_whole_message(engine, sender, reminder):
    message = render_reminder(sender, reminder, key="reminder:bob:2024-05-20", now=NOW)
    with Session(engine) as session:
        row_id = enqueue(
            session,
            message,
            company_id="acme",
            kind="reminder",
            automatic=True,
            dedupe_key="reminder:bob:2024-05-20",
            not_before=NOW + timedelta(hours=1),
        )
        session.commit()

    with Session(engine) as session:
        row = session.get(Outbox, row_id)
    assert row.status == "queued" and row.attempts == 0 and row.automatic
    assert row.recipient == "bob@burgers.example, linda@burgers.example"
    assert row.subject == message["Subject"]
    assert row.message_id == message["Message-ID"]
    assert row.created_at == NOW
    assert row.not_before == NOW + timedelta(hours=1)
    stored = parse(row.payload)
    assert stored["Message-ID"] == message["Message-ID"]
    assert stored.get_body(("plain",)).get_content() == message.get_body(("plain",)).get_content()


def test_enqueue_twice_with_a_dedupe_key_is_a_no_op(engine, sender, reminder, invitation):
    first = render_reminder(sender, reminder, key="reminder:bob:2024-05-20", now=NOW)
    again = render_reminder(sender, reminder, key="reminder:bob:2024-05-20", now=NOW)
    with Session(engine) as session:
        kwargs = dict(company_id="acme", kind="reminder", automatic=True, not_before=NOW)
        assert enqueue(session, first, dedupe_key="reminder:bob:2024-05-20", **kwargs) is not None
        assert enqueue(session, again, dedupe_key="reminder:bob:2024-05-20", **kwargs) is None
        # the caller's transaction is still usable after the duplicate
        other = render_invitation(sender, invitation, key="invitation:7", now=NOW)
        assert enqueue(session, other, company_id="acme", kind="invitation", automatic=False, not_before=NOW)
        session.commit()
    with Session(engine) as session:
        assert len(session.scalars(select(Outbox)).all()) == 2


def test_same_dedupe_key_in_another_company_is_separate(engine, sender, reminder):
    with Session(engine) as session:
        for company in ("acme", "globex"):
            message = render_reminder(replace(sender, company_id=company), reminder, key="k", now=NOW)
            row_id = enqueue(
                session,
                message,
                company_id=company,
                kind="reminder",
                automatic=True,
                dedupe_key="k",
                not_before=NOW,
            )
            assert row_id is not None
        session.commit()


def test_rolled_back_decision_leaves_no_mail(engine, sender, invitation):
    with Session(engine) as session:
        message = render_invitation(sender, invitation, key="invitation:1", now=NOW)
        enqueue(session, message, company_id="acme", kind="invitation", automatic=False, not_before=NOW)
        session.rollback()
    with Session(engine) as session:
        assert session.scalars(select(Outbox)).all() == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"kind": "newsletter"}, "kind"),
        ({"not_before": NOW.replace(tzinfo=None)}, "timezone-aware"),
    ],
    ids=["unknown-kind", "naive-not-before"],
)
def test_enqueue_refuses_bad_input(engine, sender, invitation, change, error):
    message = render_invitation(sender, invitation, key="invitation:1", now=NOW)
    kwargs = dict(company_id="acme", kind="invitation", automatic=False, not_before=NOW) | change
    with Session(engine) as session, pytest.raises(ValueError, match=error):
        enqueue(session, message, **kwargs)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_stored_message_leaves_dated_when_it_leaves_and_otherwise_unchanged(newline):
    """Only the header's Date line changes (a folded one with its continuation), never a body
    line that looks like one, nor any other header."""
    head = ["From: billing@acme.example", "Date: Sat, 21 Nov 2026", " 05:00:30 +0000", "To: bob@example.com"]
    body = ["", "Date: in the body stays", "Thanks"]
    payload = newline.join(head + body)
    leaving = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))

    outgoing = Outgoing.from_stored("<m@acme.example>", "bob@example.com", payload, dated=leaving)

    expected = newline.join([head[0], "Date: Mon, 23 Nov 2026 14:00:00 +0000", head[3], *body])
    assert outgoing.data == expected.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    assert outgoing.sender == "billing@acme.example"
    undated = Outgoing.from_stored("<m@acme.example>", "bob@example.com", payload)
    assert undated.data == payload.replace("\r\n", "\n").replace("\n", "\r\n").encode()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_stored_message_is_sent_from_its_header_not_a_from_line_of_its_body(newline):
    """The sender is read from the header lines only (a folded one too), never from a line of
    the body that looks like a header, whatever the payload's line endings."""
    payload = newline.join(
        [
            "From: Acme Widgets International Holdings Limited of Somewhere Far Away",
            " <billing@acme.example>",
            "To: bob@example.com",
            "Subject: Your invoices",
            "",
            "From: forged@evil.example",
            "",
            "Thanks",
        ]
    )
    outgoing = Outgoing.from_stored("<m@acme.example>", "bob@example.com", payload)
    assert outgoing.sender == "billing@acme.example"
    assert outgoing.data == payload.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    with pytest.raises(ValueError, match="no From address"):
        Outgoing.from_stored(
            "<m@acme.example>", "bob@example.com", f"To: bob@example.com{newline}{newline}From: x@y.example"
        )
