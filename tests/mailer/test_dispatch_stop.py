"""A dispatch asked to stop (the first Ctrl-C) records the answers of what it had sent and
queues the rest again untouched: nothing is left `sending` to turn in doubt later."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mailer.dispatch import dispatch
from mailer.outbox import OUTBOX
from mailer.retry import RetryPolicy
from mailer.smtp import SmtpTransport
from mailer.transports import FileTransport
from tests.mailer.conftest import no_window, put, reminders, rows, start, transport_for
from tests.mailer.smtp_server import Recorder

MONDAY_9AM = datetime(2024, 5, 20, 13, 0, tzinfo=UTC)


@dataclass
class Slow(Recorder):
    """Takes `delay` seconds over each message, as a loaded server does; `wait_received`
    lets a test act once a number of messages has arrived."""

    delay: float = 0.05
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(self.delay)
        answer = await super().handle_DATA(server, session, envelope)
        with self.arrived:
            self.arrived.notify_all()
        return answer

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def wait_received(self, count: int, timeout: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: self.count() >= count, timeout)


@pytest.mark.parametrize("batch_size", [200, 3], ids=["within-a-batch", "between-batches"])
def test_stop_records_what_was_sent_and_queues_the_rest_untouched(engine, sender, reminder, batch_size):
    recorder = Slow(delay=0.05)
    controller = start(recorder)
    ids = put(engine, reminders(sender, reminder, 20, MONDAY_9AM), automatic=False, not_before=MONDAY_9AM)
    transport = transport_for(controller, concurrency=2, start_group=2)  # two messages begun per commit
    try:
        report = dispatch(
            engine,
            transport,
            now=MONDAY_9AM,
            window_for=no_window,
            worker_id="w1",
            batch_size=batch_size,
            stop=lambda: recorder.count() >= 3,
        )
        after = rows(engine).values()
        sent = [row for row in after if row.status == "sent"]
        others = [row for row in after if row.status != "sent"]

        assert report.stopped and recorder.count() >= 3
        assert {row.message_id for row in sent} == set(recorder.by_message_id())  # every answer recorded
        assert sorted(report.sent) == sorted(row.id for row in sent)
        assert {row.attempts for row in sent} == {1}
        assert others, "the stop came too late to leave anything queued"
        assert {(row.status, row.attempts, row.next_attempt_at, row.claimed_by) for row in others} == {
            ("queued", 0, None, None)  # not `sending`/`claimed`/`in_doubt`; no attempt, no retry delay
        }
        assert report.left == len(others)
        if batch_size >= len(ids):  # all claimed at once: every message not sent was handed back
            assert report.handed_back == sorted(row.id for row in others)
        assert report.retrying == report.failed == report.in_doubt == report.expired == []

        rest = dispatch(engine, transport, now=MONDAY_9AM, window_for=no_window, worker_id="w2")
    finally:
        controller.stop()

    assert not rest.stopped and sorted(rest.sent) == sorted(row.id for row in others)
    assert recorder.by_message_id() == {row.message_id: 1 for row in rows(engine).values()}  # each once
    assert {row.status for row in rows(engine).values()} == {"sent"}


def test_file_transport_stops_after_the_message_being_written(engine, tmp_path, sender, reminder):
    ids = put(engine, reminders(sender, reminder, 6, MONDAY_9AM), automatic=False, not_before=MONDAY_9AM)
    earlier = MONDAY_9AM - timedelta(minutes=5)  # each was deferred once already: due again now
    with engine.begin() as connection:
        connection.execute(update(OUTBOX).values(attempts=1, next_attempt_at=earlier, last_error="451 busy"))
    written = tmp_path / "outbox"

    report = dispatch(
        engine,
        FileTransport(written),
        now=MONDAY_9AM,
        window_for=no_window,
        worker_id="w1",
        stop=lambda: len(list(written.glob("*.eml"))) >= 2,
    )

    assert (report.stopped, report.sent, report.handed_back, report.left) == (True, ids[:2], ids[2:], 4)
    after = rows(engine)
    assert [(after[i].status, after[i].attempts) for i in ids[:2]] == [("sent", 2)] * 2
    assert {
        (after[i].status, after[i].attempts, after[i].next_attempt_at, after[i].last_error) for i in ids[2:]
    } == {("queued", 1, earlier, "451 busy")}


def test_stop_before_the_first_batch_claims_nothing(engine, smtp, sender, reminder):
    controller, recorder = smtp
    put(engine, reminders(sender, reminder, 3, MONDAY_9AM), automatic=False, not_before=MONDAY_9AM)

    report = dispatch(
        engine,
        transport_for(controller),
        now=MONDAY_9AM,
        window_for=no_window,
        worker_id="w1",
        stop=lambda: True,
    )

    assert (report.stopped, report.left, report.sent, report.handed_back) == (True, 3, [], [])
    assert recorder.received == []
    assert {(row.status, row.claimed_by) for row in rows(engine).values()} == {("queued", None)}


@pytest.mark.timed
def test_stop_ends_the_wait_between_connection_attempts(engine, sender, reminder):
    """A server refusing connections, up to 5 s between attempts (full jitter): a stop during a
    wait ends the run at once, without waiting it out nor connecting again. Every message is
    queued again, nothing is left `sending`."""
    closed = socket.create_server(("127.0.0.1", 0))  # a free port nobody listens on
    port = closed.getsockname()[1]
    closed.close()
    ids = put(engine, reminders(sender, reminder, 8, MONDAY_9AM), automatic=False, not_before=MONDAY_9AM)
    patient = RetryPolicy(attempts=3, initial_seconds=5.0, max_seconds=5.0)
    transport = SmtpTransport("127.0.0.1", port, "none", retry=patient, start_group=1, concurrency=2)
    began = time.monotonic()

    def stop() -> bool:  # refusals are instant: by then the workers wait to try again
        return time.monotonic() > began + 0.3

    report = dispatch(engine, transport, now=MONDAY_9AM, window_for=no_window, worker_id="w1", stop=stop)

    assert report.stopped and time.monotonic() - began < 2
    after = rows(engine)
    assert {after[i].status for i in ids} == {"queued"}
    tried = [i for i in ids if after[i].attempts]
    assert sorted(report.retrying) == tried  # only if all 3 attempts came within 0.3 s: rare
    assert sorted(report.handed_back) == [i for i in ids if i not in tried]
