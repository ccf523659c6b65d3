"""A portal's request for access, with `arsync run` running: the invitation is mailed at once
(SPEC §2), not at the next minutely dispatch. A real worker process, a real server, a real
SMTP server on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, update

from store.fleet_tables import FleetJob, SyncSchedule
from store.jobs import DISPATCH, REQUESTED
from store.tables import AccessRequest, Invitation, Outbox
from tests.http.conftest import Served
from tests.http.test_webhook_worker import wait_for
from tests.mailer.smtp_server import LoopbackController, Recorder

EMAIL = "accounts@orsted.example"  # the primary contact of a Xero customer: eligible, not enabled
INVITE_LINK = re.compile(r"https?://\S+/invite/[A-Za-z0-9_-]{43}")


def start_worker(config: Path, log: Path) -> subprocess.Popen:
    """`arsync run` on `config`, its log in `log` (a file: a pipe could fill up)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sync", "--config", str(config), "run"],
            env=dict(os.environ),
            stderr=out,
            stdout=subprocess.DEVNULL,
        )


def test_a_request_for_access_is_mailed_within_seconds_by_a_running_worker(served: Served, tmp_path):
    recorder = Recorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    config = served.config_mailing_to(smtp.port, tmp_path / "arsync.toml")
    log = tmp_path / "run.log"
    engine = served.engine()
    with engine.begin() as connection:  # no sync due for a day: the worker only dispatches
        connection.execute(update(SyncSchedule).values(next_due_at=datetime.now(UTC) + timedelta(days=1)))
    worker = start_worker(config, log)
    try:
        started = lambda: served.scalar("SELECT COUNT(*) FROM workers") >= 1  # noqa: E731
        assert wait_for(started, 30), log.read_text()[-2000:]
        # Whatever run of the `requested` job the start-up made is over; the next is not due
        # for a day, so only the request can bring it on.
        free = f"SELECT COUNT(*) FROM fleet_jobs WHERE name = '{REQUESTED}' AND claimed_by IS NULL"
        assert wait_for(lambda: served.scalar(free) == 1, 30), log.read_text()[-2000:]
        with engine.begin() as connection:
            connection.execute(
                update(FleetJob)
                .where(FleetJob.name == REQUESTED)
                .values(next_due_at=datetime.now(UTC) + timedelta(days=1))
            )
        with recorder.lock:
            recorder.received.clear()

        began = time.monotonic()
        with served.client("xero") as client:
            answer = client.post("/v1/companies/xero/request-access", json={"email": EMAIL})
        assert answer.status_code == 202

        def invited() -> list:
            return [r for r in list(recorder.received) if r.rcpt_tos == [EMAIL]]

        assert wait_for(lambda: invited(), 10), log.read_text()[-2000:]
        waited = time.monotonic() - began
        [mail] = invited()
        assert INVITE_LINK.search(mail.message.get_body(("plain",)).get_content())
        assert waited < 10
        pending = "SELECT COUNT(*) FROM access_requests WHERE company_id = 'xero' AND handled_at IS NULL"
        assert served.scalar(pending) == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        engine.dispose()
        smtp.stop()
    assert worker.returncode == 0, log.read_text()[-2000:]


class SlowRecorder(Recorder):
    """A mail server taking 0.4 s a message: a backlog of 200 lasts over a minute."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(0.4)
        return await super().handle_DATA(server, session, envelope)


def test_a_request_is_mailed_at_once_beside_a_long_backlog(served: Served, tmp_path):
    """The dispatch working through 200 queued messages on a slow server holds its job for
    over a minute; the requested invitation goes beside it, in a job of its own."""
    recorder = SlowRecorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    config = served.config_mailing_to(smtp.port, tmp_path / "arsync.toml")
    engine = served.engine()
    now = datetime.now(UTC)
    backlog = [
        {
            "company_id": "qbo",
            "kind": "invitation",
            "automatic": False,
            "recipient": f"bulk{n}@x.example",
            "subject": "s",
            "message_id": f"<bulk{n}.{uuid.uuid4().hex}@x.example>",
            "payload": f"From: a@b.example\r\nTo: bulk{n}@x.example\r\nSubject: s\r\n\r\nhi\r\n",
            "dedupe_key": f"bulk:{uuid.uuid4().hex}",
            "not_before": now - timedelta(minutes=1),
            "status": "queued",
            "attempts": 0,
            "created_at": now - timedelta(minutes=1),
        }
        for n in range(200)
    ]
    with engine.begin() as connection:
        connection.execute(update(SyncSchedule).values(next_due_at=now + timedelta(days=1)))
        connection.execute(insert(Outbox), backlog)
        # due at once, whatever a worker of an earlier test here left (the store is shared),
        # and the contact as if never asked for (its earlier link would answer the request)
        connection.execute(update(FleetJob).where(FleetJob.name == DISPATCH).values(next_due_at=now))
        connection.execute(delete(AccessRequest).where(AccessRequest.email == EMAIL))
        connection.execute(
            update(Invitation)
            .where(Invitation.email == EMAIL, Invitation.superseded_at.is_(None))
            .values(superseded_at=now)
        )
    log = tmp_path / "run.log"
    worker = start_worker(config, log)
    try:
        assert wait_for(lambda: len(recorder.received) >= 3, 30), log.read_text()[-2000:]  # under way
        with served.client("xero") as client:
            assert client.post("/v1/companies/xero/request-access", json={"email": EMAIL}).status_code == 202
        invited = lambda: [r for r in list(recorder.received) if r.rcpt_tos == [EMAIL]]  # noqa: E731
        assert wait_for(invited, 10), f"backlog sent meanwhile: {len(recorder.received)}"
        assert len(recorder.received) < 100  # the backlog was still going
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        with engine.begin() as connection:  # the package's server is shared: leave no backlog
            connection.execute(delete(Outbox).where(Outbox.dedupe_key.like("bulk:%")))
        engine.dispose()
        smtp.stop()
    assert worker.returncode == 0, log.read_text()[-2000:]
