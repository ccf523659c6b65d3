from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.mails import InvitationMail, ReminderLine, ReminderMail, Sender
from mailer.outbox import enqueue
from mailer.outgoing import Outgoing
from mailer.render import render_reminder
from mailer.retry import RetryPolicy
from mailer.smtp import SmtpTransport
from portal_rules.windows import WEEKDAYS, DeliveryWindow
from store.tables import Outbox
from tests.mailer.smtp_server import Deferring, LoopbackController, Recorder, Refusing

NOW = datetime(2024, 5, 20, 14, 30, tzinfo=UTC)
WEEKDAYS_9_TO_17 = DeliveryWindow(frozenset({"mon", "tue", "wed", "thu", "fri"}), 9, 17, "America/New_York")
ALWAYS_OPEN = DeliveryWindow(frozenset(WEEKDAYS), 0, 23, "UTC")
FAST_RETRY = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.05)


def outgoing(messages) -> list[Outgoing]:
    return [Outgoing.from_message(m) for m in messages]


def start(handler) -> LoopbackController:
    controller = LoopbackController(handler)
    controller.start()
    return controller


@pytest.fixture
def smtp():
    """A recording SMTP server; yields (controller, recorder)."""
    recorder = Recorder()
    controller = start(recorder)
    yield controller, recorder
    controller.stop()


@pytest.fixture
def deferring_smtp():
    handler = Deferring(failures=1)
    controller = start(handler)
    yield controller, handler
    controller.stop()


@pytest.fixture
def refusing_smtp():
    handler = Refusing()
    controller = start(handler)
    yield controller, handler
    controller.stop()


def transport_for(controller: LoopbackController, **kwargs) -> SmtpTransport:
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("timeout", 5.0)
    return SmtpTransport(controller.hostname, controller.port, "none", **kwargs)


@pytest.fixture
def sender() -> Sender:
    return Sender("acme", "Acme Landscaping", "billing@acme.example")


@pytest.fixture
def invitation() -> InvitationMail:
    return InvitationMail(
        customer_name="Zoë's Café",
        email="zoe@cafe.example",
        portal_url="https://portal.acme.example/",
        token="tok_AbC-123",
        ttl_days=14,
    )


@pytest.fixture
def reminder() -> ReminderMail:
    return ReminderMail(
        customer_name="Bob's Burgers",
        recipients=("bob@burgers.example", "linda@burgers.example"),
        portal_url="https://portal.acme.example",
        items=(
            ReminderLine("INV-1001", date(2024, 5, 1), Decimal("1234.5"), "USD"),
            ReminderLine("INV-1002", date(2024, 5, 23), Decimal("99.999"), "USD"),
            ReminderLine("INV-1003", date(2024, 4, 1), Decimal("0.00"), "USD"),
        ),
        today=date(2024, 5, 20),
    )


def in_new_york(_company: str) -> DeliveryWindow:
    return WEEKDAYS_9_TO_17


def no_window(_company: str) -> DeliveryWindow:
    """Every hour of every day: automatic mail is not held back."""
    return ALWAYS_OPEN


def reminders(sender, reminder, count, now):
    for n in range(count):
        mail = replace(reminder, customer_name=f"Customer {n}", recipients=(f"c{n}@example.com",))
        yield render_reminder(sender, mail, key=f"reminder:c{n}:{now.date()}", now=now)


def put(engine, messages, *, automatic, not_before, kind="reminder") -> list[int]:
    with Session(engine) as session:
        ids = [
            enqueue(session, m, company_id="acme", kind=kind, automatic=automatic, not_before=not_before)
            for m in messages
        ]
        session.commit()
    return ids


def rows(engine) -> dict[int, Outbox]:
    with Session(engine) as session:
        return {row.id: row for row in session.scalars(select(Outbox))}
