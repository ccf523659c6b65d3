from __future__ import annotations

import asyncio
from dataclasses import replace

from mailer.render import render_invitation, render_reminder
from mailer.results import Outcome
from mailer.smtp import SmtpTransport
from tests.mailer.conftest import FAST_RETRY, NOW, outgoing, transport_for


def many_reminders(sender, reminder, count):
    return [
        render_reminder(
            sender,
            replace(reminder, customer_name=f"Customer {n}", recipients=(f"c{n}@example.com",)),
            key=f"reminder:c{n}:2024-05-20",
            now=NOW,
        )
        for n in range(count)
    ]


def test_delivers_invitation_and_reminder(smtp, sender, invitation, reminder):
    controller, recorder = smtp
    messages = [
        render_invitation(sender, invitation, key="i1", now=NOW),
        render_reminder(sender, reminder, key="r1", now=NOW),
    ]

    results = asyncio.run(transport_for(controller).send_many(outgoing(messages)))

    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.DELIVERED]
    assert [r.message_id for r in results] == [m["Message-ID"] for m in messages]
    by_id = {r.message["Message-ID"]: r for r in recorder.received}
    invite = by_id[messages[0]["Message-ID"]]
    assert invite.mail_from == "billing@acme.example"
    assert invite.rcpt_tos == ["zoe@cafe.example"]
    assert invite.message["Subject"] == "Welcome to the Acme Landscaping customer portal"
    html = invite.message.get_body(("html",)).get_content()
    assert "https://portal.acme.example/invite/tok_AbC-123" in html
    remind = by_id[messages[1]["Message-ID"]]
    assert remind.rcpt_tos == ["bob@burgers.example", "linda@burgers.example"]
    text = remind.message.get_body(("plain",)).get_content()
    assert all(doc in text for doc in ("INV-1001", "INV-1002", "INV-1003"))


def test_one_connection_carries_many_messages(smtp, sender, reminder):
    controller, recorder = smtp
    transport = transport_for(controller, concurrency=1)

    results = asyncio.run(transport.send_many(outgoing(many_reminders(sender, reminder, 25))))

    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert len(recorder.received) == 25
    assert len(recorder.peers) == 1  # counted at the server: one client port
    assert transport.connections_opened == 1


def test_concurrency_bounds_the_connections(smtp, sender, reminder):
    controller, recorder = smtp
    transport = transport_for(controller, concurrency=3)

    asyncio.run(transport.send_many(outgoing(many_reminders(sender, reminder, 30))))

    assert len(recorder.received) == 30
    assert 1 <= len(recorder.peers) <= 3


def test_connection_is_renewed_after_its_quota(smtp, sender, reminder):
    controller, recorder = smtp
    transport = transport_for(controller, concurrency=1, messages_per_connection=4)

    asyncio.run(transport.send_many(outgoing(many_reminders(sender, reminder, 10))))

    assert len(recorder.received) == 10
    assert len(recorder.peers) == 3


def test_550_is_permanent_with_the_servers_answer(refusing_smtp, sender, invitation):
    controller, recorder = refusing_smtp

    [result] = asyncio.run(
        transport_for(controller).send_many(
            outgoing([render_invitation(sender, invitation, key="i", now=NOW)])
        )
    )

    assert result.outcome is Outcome.PERMANENT
    assert result.code == 550
    assert "Message rejected as spam" in result.detail
    assert result.describe() == "550 5.7.1 Message rejected as spam"
    assert recorder.received == []


def test_451_is_retried_then_delivered_once(deferring_smtp, sender, invitation):
    controller, handler = deferring_smtp
    message = render_invitation(sender, invitation, key="i", now=NOW)

    [result] = asyncio.run(transport_for(controller).send_many(outgoing([message])))

    assert result.outcome is Outcome.DELIVERED
    assert handler.deferred == 1
    assert handler.by_message_id() == {message["Message-ID"]: 1}


def test_451_without_recovery_is_transient(sender, invitation):
    from tests.mailer.conftest import outgoing, start
    from tests.mailer.smtp_server import Deferring

    handler = Deferring(failures=100)
    controller = start(handler)
    try:
        [result] = asyncio.run(
            transport_for(controller).send_many(
                outgoing([render_invitation(sender, invitation, key="i", now=NOW)])
            )
        )
    finally:
        controller.stop()

    assert result.outcome is Outcome.TRANSIENT
    assert result.code == 451
    assert handler.deferred == FAST_RETRY.attempts


def test_server_down_is_transient_for_the_whole_batch_quickly(sender, reminder):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SmtpTransport("127.0.0.1", port, "none", concurrency=2, retry=FAST_RETRY, timeout=2)

    results = asyncio.run(transport.send_many(outgoing(many_reminders(sender, reminder, 20))))

    assert len(results) == 20
    assert {r.outcome for r in results} == {Outcome.TRANSIENT}
    assert "cannot reach 127.0.0.1" in results[-1].detail


def test_one_refused_recipient_does_not_fail_the_others(sender, reminder):
    from tests.mailer.conftest import outgoing, start
    from tests.mailer.smtp_server import Recorder

    class RefusesLinda(Recorder):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("linda"):
                return "550 5.1.1 No such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    handler = RefusesLinda()
    controller = start(handler)
    try:
        [result] = asyncio.run(
            transport_for(controller).send_many(
                outgoing([render_reminder(sender, reminder, key="r", now=NOW)])
            )
        )
    finally:
        controller.stop()

    assert result.outcome is Outcome.DELIVERED
    assert "linda@burgers.example: 550 5.1.1 No such user" in result.detail
    assert [r.rcpt_tos for r in handler.received] == [["bob@burgers.example"]]


def test_empty_batch():
    assert asyncio.run(SmtpTransport("127.0.0.1", 1, "none").send_many(outgoing([]))) == []


def test_repr_hides_password():
    assert "s3cret" not in repr(SmtpTransport("h", 25, "none", "user", "s3cret"))


def test_a_window_closing_while_the_connection_opens_stops_the_message_before_mail(smtp, sender, reminder):
    """`halt` is asked as the attempt begins and while the connection opens (every 0.1 s);
    one that turns true after the last look, as the connection completes (a window closing
    at that moment), must still stop the message: nothing of it is sent after the closing."""
    controller, recorder = smtp
    [message] = outgoing([render_reminder(sender, reminder, key="r1", now=NOW)])
    looks: list[int] = []

    def closed_from_the_third_look(message_id: str) -> bool:
        looks.append(1)
        return len(looks) >= 3  # the attempt's look, the connection's first, then closed

    transport = transport_for(controller, concurrency=1)
    [result] = asyncio.run(transport.send_many([message], halt=closed_from_the_third_look))

    assert result.outcome is Outcome.UNSENT
    assert recorder.received == []
