"""Ctrl-C during `arsync mail dispatch`: what the server took is recorded `sent`, the rest
stays queued as it was, and the next dispatch delivers exactly the rest (a real process, a
real SIGINT, a slow real SMTP server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

from sync.app import App
from sync.jobs import JobContext, send
from tests.endtoend.mail.conftest import COMPANY, FRIDAY_10AM, customer, invoice, iso
from tests.mailer.test_dispatch_stop import Slow

MESSAGES = 24  # more than the transport begins at once (4 connections x 4 messages)


def test_ctrl_c_records_what_was_sent_and_leaves_the_rest_queued(make_shop, store_url, smtp):
    shop = make_shop(store_url)
    smtp.stop()
    smtp.recorder = slow = Slow(delay=0.2)
    smtp.start()  # same port, now slow
    shop.sync(
        [customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in range(MESSAGES)],
        [invoice(f"{n}0", str(n), date(2026, 11, 20), "10.00") for n in range(MESSAGES)],
    )
    now = iso(FRIDAY_10AM)
    assert (
        f"{COMPANY}: enqueued {MESSAGES} reminder email(s)" in shop.cli("reminders", "plan", "--now", now).out
    )

    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_DEBUG")}
    command = [sys.executable, "-m", "sync", "--config", str(shop.path), "mail", "dispatch", "--now", now]
    dispatching = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not slow.wait_received(1, timeout=0.1):  # the first message in, or the process out
            assert dispatching.poll() is None, dispatching.communicate()
            assert time.monotonic() < deadline, "the dispatcher sent nothing in 30 s"
        os.kill(dispatching.pid, signal.SIGINT)
        out, err = dispatching.communicate(timeout=30)
    finally:
        dispatching.kill()

    received = slow.by_message_id()
    assert dispatching.returncode == 1, err
    assert "stopping after" in err and "Traceback" not in err
    assert out == f"mail: {len(received)} sent, 0 failed, 0 to retry\n"
    left = MESSAGES - len(received)
    assert left > 0, "the SIGINT came too late to leave anything queued"
    assert f"{left} message(s) stay queued for the next `arsync mail dispatch`" in err
    outbox = shop.outbox("message_id", "status", "attempts", "next_attempt_at", "claimed_by")
    assert {m: (s, a) for m, s, a, _, _ in outbox if m in received} == dict.fromkeys(received, ("sent", 1))
    assert {(s, a, retry, by) for m, s, a, retry, by in outbox if m not in received} == {
        ("queued", 0, None, None)
    }

    rest = shop.process("mail", "dispatch", "--now", now)

    assert (rest.code, rest.out) == (0, f"mail: {left} sent, 0 failed, 0 to retry\n"), rest.err
    assert slow.by_message_id() == {message_id: 1 for message_id, *_ in outbox}
    assert {status for _, status in shop.outbox("id", "status")} == {"sent"}


def test_a_stopping_worker_finishes_the_messages_on_their_way_and_queues_the_rest(make_shop, store_url, smtp):
    """`arsync run`'s dispatch job on SIGTERM: the same stop as Ctrl-C, so a worker stopped by
    systemd mid-batch leaves nothing `sending` to turn in doubt."""
    shop = make_shop(store_url)
    smtp.stop()
    smtp.recorder = slow = Slow(delay=0.2)
    smtp.start()
    shop.sync(
        [customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in range(MESSAGES)],
        [invoice(f"{n}0", str(n), date(2026, 11, 20), "10.00") for n in range(MESSAGES)],
    )
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0
    app = App.open(shop.config)
    try:
        send(JobContext(app, shop.config, lambda: FRIDAY_10AM, lambda: slow.count() >= 1, "host:1:w1"))
    finally:
        app.close()
    received = slow.by_message_id()
    outbox = shop.outbox("message_id", "status", "attempts")
    assert 1 <= len(received) < MESSAGES
    assert {m: (s, a) for m, s, a in outbox if m in received} == dict.fromkeys(received, ("sent", 1))
    assert {(s, a) for m, s, a in outbox if m not in received} == {("queued", 0)}
