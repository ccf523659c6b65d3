"""A delivery window that closes while a batch is on its way: the automatic messages not yet
begun go back to `queued` untouched, for the next opening; manual mail still goes.

The daemon claims 100 messages a batch; with a loaded server a batch takes seconds, so the
window must be checked again as messages leave, not only when the batch is claimed (SPEC §2:
automatic mail "is only handed to the mail server inside a window"). The dispatcher's clock
is shifted so that the window closes a second after the run starts; the server is real.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mailer.dispatch import dispatch
from mailer.smtp import SmtpTransport
from portal_rules.windows import WEEKDAYS, DeliveryWindow
from tests.mailer.conftest import put, reminders, rows, start, transport_for
from tests.mailer.smtp_server import Recorder

SECOND = timedelta(seconds=1)
DELAY = 0.2  # seconds the server takes over each message
OPEN_FOR = timedelta(seconds=1.1)  # within the second group of messages of each connection
UNTIL_18H_UTC = DeliveryWindow(frozenset(WEEKDAYS), 0, 17, "UTC")  # closes at 18:00:00


@dataclass
class Timed(Recorder):
    """A loaded server: notes when each message's DATA began, then takes `DELAY` over it."""

    began: dict[str, float] = field(default_factory=dict)

    async def handle_DATA(self, server, session, envelope) -> str:
        message_id = _message_id(envelope.original_content)
        with self.lock:
            self.began[message_id] = time.time()
        await asyncio.sleep(DELAY)
        return await super().handle_DATA(server, session, envelope)


def _message_id(content: bytes) -> str:
    for line in content.splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("message without a Message-ID")


def test_window_closing_mid_batch_queues_the_automatic_messages_not_begun(engine, sender, reminder):
    recorder = Timed()
    controller = start(recorder)
    closing = datetime.now(UTC).replace(hour=18, minute=0, second=0, microsecond=0)
    now = closing - SECOND  # the time the messages are put in the outbox
    automatic = put(engine, reminders(sender, reminder, 60, now), automatic=True, not_before=now - 2 * SECOND)
    manual_mail = list(reminders(sender, reminder, 68, now))[60:]  # last in the same batch
    manual = put(engine, manual_mail, automatic=False, not_before=now - SECOND)
    transport: SmtpTransport = transport_for(controller)  # 4 connections, 4 messages begun per commit
    shift = closing - OPEN_FOR - datetime.now(UTC)  # the window closes OPEN_FOR after the dispatch begins

    def clock() -> datetime:
        return datetime.now(UTC) + shift

    now = clock()
    try:
        report = dispatch(
            engine,
            transport,
            now=now,
            window_for=lambda _c: UNTIL_18H_UTC,
            clock=clock,
            worker_id="w1",
            batch_size=100,  # as the daemon: one batch holds them all
        )
    finally:
        controller.stop()
    closed_at = (closing - shift).timestamp()
    stored = rows(engine)
    ids_by_message = {stored[i].message_id: i for i in automatic}
    late = {ids_by_message[m]: t - closed_at for m, t in recorder.began.items() if m in ids_by_message}
    late = {i: s for i, s in late.items() if s > 0}
    # Each message is checked as it leaves: none begins after the closing (a few ms for MAIL, RCPT).
    assert max(late.values(), default=0) < 0.1, late
    sent = [i for i in automatic if stored[i].status == "sent"]
    waiting = [i for i in automatic if stored[i].status == "queued"]
    assert sent and len(sent) + len(waiting) == len(automatic), report.summary()
    assert len(waiting) >= 20  # the server could not have taken them all in a second
    assert sorted(report.handed_back) == waiting
    for i in waiting:  # untouched: no attempt counted, no retry delay, nobody's claim
        row = stored[i]
        assert (row.attempts, row.next_attempt_at, row.last_error, row.claimed_by) == (0, None, None, None)
    assert all(stored[i].status == "sent" for i in manual)  # windows never hold manual mail
    assert not report.in_doubt and not report.failed and not report.retrying
