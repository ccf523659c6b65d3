from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailer.admin import counts, resend
from mailer.claim import claim
from mailer.dispatch import dispatch
from mailer.outbox import OUTBOX
from mailer.render import render_invitation
from mailer.retry import Backoff, RetryPolicy
from mailer.smtp import SmtpTransport
from mailer.transports import FileTransport, eml_name
from tests.mailer.conftest import in_new_york, no_window, put, reminders, rows, start, transport_for
from tests.mailer.smtp_server import Deferring, HangsUpAfterData, LoopbackController, Recorder

REPO = Path(__file__).resolve().parents[2]
SATURDAY = datetime(2024, 5, 18, 14, 0, tzinfo=UTC)  # 10:00 in New York, a Saturday
MONDAY_9AM = datetime(2024, 5, 20, 13, 0, tzinfo=UTC)  # the next opening: 09:00 EDT


def test_automatic_mail_waits_for_the_window(engine, smtp, sender, reminder):
    controller, recorder = smtp
    [row_id] = put(engine, reminders(sender, reminder, 1, SATURDAY), automatic=True, not_before=SATURDAY)

    report = dispatch(engine, transport_for(controller), now=SATURDAY, window_for=in_new_york, worker_id="w1")

    assert report.sent == [] and recorder.received == []
    assert rows(engine)[row_id].status == "queued"

    preview = dispatch(
        engine, transport_for(controller), now=SATURDAY, window_for=in_new_york, worker_id="w1", dry_run=True
    )
    [planned] = preview.planned
    assert (planned.id, planned.send_at, planned.reason) == (row_id, MONDAY_9AM, "delivery window")

    just_before = MONDAY_9AM - timedelta(seconds=1)
    assert (
        dispatch(
            engine, transport_for(controller), now=just_before, window_for=in_new_york, worker_id="w1"
        ).sent
        == []
    )
    report = dispatch(
        engine, transport_for(controller), now=MONDAY_9AM, window_for=in_new_york, worker_id="w1"
    )

    assert report.sent == [row_id]
    assert len(recorder.received) == 1
    row = rows(engine)[row_id]
    assert (row.status, row.sent_at, row.attempts, row.claimed_by) == ("sent", MONDAY_9AM, 1, "w1")


def test_manual_mail_ignores_the_window(engine, smtp, sender, invitation):
    controller, recorder = smtp
    message = render_invitation(sender, invitation, key="invitation:1", now=SATURDAY)
    [row_id] = put(engine, [message], automatic=False, not_before=SATURDAY, kind="invitation")

    report = dispatch(engine, transport_for(controller), now=SATURDAY, window_for=in_new_york, worker_id="w1")

    assert report.sent == [row_id]
    assert [r.message["Message-ID"] for r in recorder.received] == [message["Message-ID"]]


def test_not_before_in_the_future_waits(engine, smtp, sender, invitation):
    controller, recorder = smtp
    later = SATURDAY + timedelta(hours=2)
    message = render_invitation(sender, invitation, key="invitation:1", now=SATURDAY)
    [row_id] = put(engine, [message], automatic=False, not_before=later, kind="invitation")

    assert (
        dispatch(engine, transport_for(controller), now=SATURDAY, window_for=no_window, worker_id="w").sent
        == []
    )
    assert dispatch(
        engine, transport_for(controller), now=later, window_for=no_window, worker_id="w"
    ).sent == [row_id]


def test_smtp_down_then_up_loses_and_duplicates_nothing(engine, sender, reminder):
    handler = Recorder()
    first = start(handler)
    port = first.port
    first.stop()  # the server is down
    ids = put(engine, reminders(sender, reminder, 5, MONDAY_9AM), automatic=True, not_before=MONDAY_9AM)
    down = transport_for(first)

    report = dispatch(engine, down, now=MONDAY_9AM, window_for=in_new_york, worker_id="w1")

    assert sorted(report.retrying) == ids
    for row in rows(engine).values():
        assert (row.status, row.attempts) == ("queued", 0)  # server down: not counted
        assert row.next_attempt_at > MONDAY_9AM
        assert "cannot reach" in row.last_error
    assert dispatch(engine, down, now=MONDAY_9AM, window_for=in_new_york, worker_id="w1").retrying == []

    second = LoopbackController(handler, port=port)
    second.start()  # back up
    try:
        later = MONDAY_9AM + timedelta(hours=1)
        report = dispatch(engine, transport_for(second), now=later, window_for=in_new_york, worker_id="w1")
        again = dispatch(
            engine,
            transport_for(second),
            now=later + timedelta(hours=1),
            window_for=in_new_york,
            worker_id="w1",
        )
    finally:
        second.stop()

    assert sorted(report.sent) == ids and again.sent == []
    assert {row.status for row in rows(engine).values()} == {"sent"}
    assert sorted(handler.by_message_id().values()) == [1] * 5


def test_message_id_is_stable_across_a_retry(engine, sender, invitation):
    handler = Deferring(failures=1)
    controller = start(handler)
    message = render_invitation(sender, invitation, key="invitation:1", now=MONDAY_9AM)
    [row_id] = put(engine, [message], automatic=False, not_before=MONDAY_9AM, kind="invitation")
    no_immediate_retry = transport_for(controller, retry=RetryPolicy(attempts=1))
    try:
        first = dispatch(engine, no_immediate_retry, now=MONDAY_9AM, window_for=no_window, worker_id="w1")
        row = rows(engine)[row_id]
        assert (first.retrying, row.status, row.last_error) == (
            [row_id],
            "queued",
            "451 4.3.0 Temporary local problem, try again",
        )
        second = dispatch(
            engine, no_immediate_retry, now=row.next_attempt_at, window_for=no_window, worker_id="w2"
        )
    finally:
        controller.stop()

    assert second.sent == [row_id]
    assert handler.deferred_ids == [message["Message-ID"]]
    assert handler.by_message_id() == {message["Message-ID"]: 1}
    assert rows(engine)[row_id].attempts == 2


def test_permanent_refusal_is_recorded_with_the_servers_answer(engine, refusing_smtp, sender, invitation):
    controller, _ = refusing_smtp
    [row_id] = put(
        engine,
        [render_invitation(sender, invitation, key="invitation:1", now=MONDAY_9AM)],
        automatic=False,
        not_before=MONDAY_9AM,
        kind="invitation",
    )

    report = dispatch(engine, transport_for(controller), now=MONDAY_9AM, window_for=no_window, worker_id="w1")

    assert report.failed == [row_id]
    row = rows(engine)[row_id]
    assert (row.status, row.last_error) == ("failed", "550 5.7.1 Message rejected as spam")
    assert report.errors == {row_id: "550 5.7.1 Message rejected as spam"}


def test_transient_failures_give_up_after_the_backoff_budget(engine, sender, invitation):
    handler = Deferring(failures=100)
    controller = start(handler)
    [row_id] = put(
        engine,
        [render_invitation(sender, invitation, key="invitation:1", now=MONDAY_9AM)],
        automatic=False,
        not_before=MONDAY_9AM,
        kind="invitation",
    )
    transport = transport_for(controller, retry=RetryPolicy(attempts=1))
    now = MONDAY_9AM
    try:
        for _ in range(3):
            report = dispatch(
                engine,
                transport,
                now=now,
                window_for=no_window,
                worker_id="w",
                backoff=Backoff(max_attempts=3),
            )
            now += timedelta(days=1)
    finally:
        controller.stop()

    assert report.failed == [row_id]
    row = rows(engine)[row_id]
    assert row.status == "failed" and row.attempts == 3
    assert row.last_error.startswith("gave up after 3 attempts: 451")


def test_a_mail_server_down_for_a_day_loses_no_mail(engine, sender, invitation):
    """SPEC 8: no mail is lost when the SMTP server is down. A server that cannot be reached
    is not the message's fault: the try is not counted, the message is never failed, and it
    is tried again within three minutes; once the server is back, each goes out once. (The
    retry budget used to fail every message after 8 tries, about two hours of an outage.)"""
    recorder = Recorder()
    controller = start(recorder)
    port = controller.port
    controller.stop()  # nothing listens there now
    messages = [
        render_invitation(sender, invitation, key=f"invitation:{n}", now=MONDAY_9AM) for n in range(3)
    ]
    ids = put(engine, messages, automatic=False, not_before=MONDAY_9AM, kind="invitation")
    down = SmtpTransport("127.0.0.1", port, "none", retry=RetryPolicy(attempts=1), timeout=5.0)

    now = MONDAY_9AM
    for _ in range(30):  # an hour apart: every message is due again each time
        report = dispatch(engine, down, now=now, window_for=no_window, worker_id="w")
        assert report.failed == [] and sorted(report.retrying) == sorted(ids)
        assert report.unreachable.startswith(f"cannot reach 127.0.0.1:{port}")
        for row in (rows(engine)[row_id] for row_id in ids):
            assert (row.status, row.attempts) == ("queued", 0)
            assert now < row.next_attempt_at <= now + timedelta(minutes=3)
        now += timedelta(hours=1)

    back = LoopbackController(recorder, port=port)
    back.start()
    try:
        report = dispatch(engine, transport_for(back), now=now, window_for=no_window, worker_id="w")
        again = dispatch(
            engine, transport_for(back), now=now + timedelta(hours=1), window_for=no_window, worker_id="w"
        )
    finally:
        back.stop()
    assert sorted(report.sent) == sorted(ids) and again.sent == [] and report.unreachable == ""
    assert sorted(r.message["Message-ID"] for r in recorder.received) == sorted(
        m["Message-ID"] for m in messages
    )


def test_killed_dispatcher_leaves_the_message_in_doubt(engine, store_url, smtp, sender, invitation):
    controller, recorder = smtp
    [row_id] = put(
        engine,
        [render_invitation(sender, invitation, key="invitation:1", now=MONDAY_9AM)],
        automatic=False,
        not_before=MONDAY_9AM,
        kind="invitation",
    )
    command = [
        sys.executable,
        "-m",
        "tests.mailer.dispatch_and_die",
        store_url,
        str(controller.port),
        MONDAY_9AM.isoformat(),
    ]

    died = subprocess.run(command, cwd=REPO, capture_output=True, timeout=120)

    assert died.returncode == -9, died.stderr.decode()
    assert len(recorder.received) == 1  # the server got it; nobody recorded that
    assert rows(engine)[row_id].status == "sending"

    soon = MONDAY_9AM + timedelta(minutes=5)  # the lease (10 min) has not run out
    age_outbox_claims(engine, timedelta(minutes=5))  # as much passes on the store's clock
    report = dispatch(engine, transport_for(controller), now=soon, window_for=no_window, worker_id="w2")
    assert (report.sent, report.expired, rows(engine)[row_id].status) == ([], [], "sending")

    later = MONDAY_9AM + timedelta(minutes=11)
    age_outbox_claims(engine, timedelta(minutes=6))
    report = dispatch(engine, transport_for(controller), now=later, window_for=no_window, worker_id="w2")
    again = dispatch(
        engine, transport_for(controller), now=later + timedelta(days=1), window_for=no_window, worker_id="w2"
    )

    assert report.expired == [row_id] and report.sent == [] and again.sent == []
    row = rows(engine)[row_id]
    assert (row.status, row.claimed_by) == ("in_doubt", "doomed")
    assert "resend or drop" in row.last_error
    assert len(recorder.received) == 1  # never re-sent automatically
    assert counts(engine, "acme") == {"in_doubt": 1}

    resend(engine, "acme", row_id)  # an admin decides
    report = dispatch(
        engine, transport_for(controller), now=later + timedelta(days=2), window_for=no_window, worker_id="w2"
    )
    assert report.sent == [row_id] and len(recorder.received) == 2
    assert recorder.received[0].message["Message-ID"] == recorder.received[1].message["Message-ID"]


def test_two_dispatchers_deliver_each_message_once(engine, smtp, sender, reminder):
    controller, recorder = smtp
    ids = put(engine, reminders(sender, reminder, 120, MONDAY_9AM), automatic=True, not_before=MONDAY_9AM)
    reports = {}

    def run(worker: str) -> None:
        transport = transport_for(controller, concurrency=2)
        reports[worker] = dispatch(
            engine, transport, now=MONDAY_9AM, window_for=in_new_york, worker_id=worker, batch_size=7
        )

    threads = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(reports) == ["w0", "w1", "w2"]
    sent = [row_id for report in reports.values() for row_id in report.sent]
    assert sorted(sent) == ids  # each row claimed and sent by exactly one dispatcher
    assert len(recorder.received) == 120
    assert set(recorder.by_message_id().values()) == {1}
    assert counts(engine, "acme") == {"sent": 120}


def test_file_transport_through_the_outbox(engine, tmp_path, sender, invitation):
    message = render_invitation(sender, invitation, key="invitation:1", now=MONDAY_9AM)
    [row_id] = put(engine, [message], automatic=False, not_before=MONDAY_9AM, kind="invitation")

    report = dispatch(engine, FileTransport(tmp_path), now=MONDAY_9AM, window_for=no_window, worker_id="w")

    assert report.sent == [row_id]
    assert (tmp_path / eml_name(message["Message-ID"])).exists()


def test_dry_run_changes_nothing(engine, smtp, sender, reminder, invitation):
    controller, recorder = smtp
    [automatic] = put(engine, reminders(sender, reminder, 1, SATURDAY), automatic=True, not_before=SATURDAY)
    [manual] = put(
        engine,
        [render_invitation(sender, invitation, key="invitation:1", now=SATURDAY)],
        automatic=False,
        not_before=SATURDAY,
        kind="invitation",
    )
    before = {i: (r.status, r.attempts) for i, r in rows(engine).items()}

    report = dispatch(
        engine, transport_for(controller), now=SATURDAY, window_for=in_new_york, worker_id="w", dry_run=True
    )

    assert report.dry_run and report.sent == []
    assert [(p.id, p.send_at, p.reason) for p in report.planned] == [
        (manual, SATURDAY, "due now"),
        (automatic, MONDAY_9AM, "delivery window"),
    ]
    assert recorder.received == []
    assert {i: (r.status, r.attempts) for i, r in rows(engine).items()} == before


def test_naive_now_is_refused(engine):
    with pytest.raises(ValueError, match="timezone-aware"):
        dispatch(
            engine, FileTransport("unused"), now=datetime(2024, 5, 20), window_for=no_window, worker_id="w"
        )


def test_connection_lost_during_data_leaves_the_row_in_doubt(engine, sender, invitation):
    handler = HangsUpAfterData()
    controller = start(handler)
    message = render_invitation(sender, invitation, key="invitation:1", now=MONDAY_9AM)
    [row_id] = put(engine, [message], automatic=False, not_before=MONDAY_9AM, kind="invitation")
    try:
        report = dispatch(
            engine, transport_for(controller), now=MONDAY_9AM, window_for=no_window, worker_id="w"
        )
        again = dispatch(
            engine,
            transport_for(controller),
            now=MONDAY_9AM + timedelta(days=1),
            window_for=no_window,
            worker_id="w",
        )
    finally:
        controller.stop()

    assert report.in_doubt == [row_id] and again.sent == [] and again.in_doubt == []
    assert rows(engine)[row_id].status == "in_doubt"
    assert len(handler.received) == 1


def test_a_long_run_stops_sending_automatic_mail_when_the_window_closes(engine, smtp, sender, reminder):
    """The daemon dispatches with its clock: a backlog of 30 reminders, 10 a batch, begun in
    the last second of the window (9-17 in New York), which closes once the first batch is
    sent. The rest is not claimed: it waits for the next opening."""
    controller, recorder = smtp
    closing = datetime(2024, 5, 20, 21, 59, 59, tzinfo=UTC)  # 17:59:59 EDT, the window's last second
    ids = put(engine, reminders(sender, reminder, 30, closing), automatic=True, not_before=closing)

    def clock() -> datetime:  # read as each group leaves too: the window closes once 10 are in
        return closing + timedelta(seconds=1 if len(recorder.received) >= 10 else 0)

    report = dispatch(
        engine,
        transport_for(controller),
        now=closing,
        window_for=in_new_york,
        worker_id="w1",
        batch_size=10,
        clock=clock,
    )
    assert report.sent == ids[:10] and len(recorder.received) == 10
    assert [rows(engine)[row_id].status for row_id in ids[10:]] == ["queued"] * 20
    monday_evening = dispatch(
        engine,
        transport_for(controller),
        now=closing + timedelta(hours=1),
        window_for=in_new_york,
        worker_id="w1",
    )
    assert monday_evening.sent == [] and len(recorder.received) == 10


def age_outbox_claims(engine, by: timedelta) -> None:
    """Let `by` pass on the store's clock for the outbox rows claimed now."""
    with engine.begin() as connection:
        held = connection.execute(
            select(OUTBOX.c.id, OUTBOX.c.claimed_at).where(OUTBOX.c.claimed_at.is_not(None))
        )
        for row_id, at in held.all():
            connection.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(claimed_at=at - by))


def test_a_dispatcher_whose_clock_runs_ahead_never_expires_a_live_ones_batch(
    engine, tmp_path, sender, reminder
):
    """A live dispatcher has been sending a batch for 6 minutes (the lease is 10); another,
    its clock 5 minutes ahead, dispatches: the lease is judged on the store's clock, so the
    batch stays the live one's (not in doubt, no false alert). Past 10 minutes on the store's
    clock, a dead dispatcher's batch is expired, whatever the other's clock says."""
    on_time = datetime.now(UTC)
    ids = put(engine, reminders(sender, reminder, 2, on_time), automatic=False, not_before=on_time)
    with engine.begin() as connection:
        taken = claim(connection, now=on_time, worker_id="live", open_companies=[], limit=10)
    assert sorted(c.id for c in taken) == ids
    age_outbox_claims(engine, timedelta(minutes=6))
    ahead = on_time + timedelta(minutes=5)
    report = dispatch(engine, FileTransport(tmp_path), now=ahead, window_for=no_window, worker_id="ahead")
    assert (report.expired, report.sent) == ([], [])
    assert {row_id: (r.status, r.claimed_by) for row_id, r in rows(engine).items()} == dict.fromkeys(
        ids, ("sending", "live")
    )
    age_outbox_claims(engine, timedelta(minutes=4, seconds=1))  # 10 min 1 s: that one is dead
    behind = on_time - timedelta(minutes=5)
    report = dispatch(engine, FileTransport(tmp_path), now=behind, window_for=no_window, worker_id="behind")
    assert report.expired == ids and report.sent == []
    assert {r.status for r in rows(engine).values()} == {"in_doubt"}
