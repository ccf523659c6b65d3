"""Dispatching across workers: each message delivered once, and a killed worker's batch
settled message by message (a real SMTP server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, text

from mailer.claim import expire_claims_of
from mailer.dispatch import dispatch
from mailer.mails import ReminderMail, Sender
from mailer.smtp import SmtpTransport
from store.db import make_engine, upgrade
from store.fleet_tables import WorkerRow
from tests.fleet.test_fleet import wait_for
from tests.mailer.conftest import no_window, put, reminders
from tests.mailer.smtp_server import LoopbackController, Recorder


def test_two_workers_send_each_message_once(pg_url: str, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    recorder = Recorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    engine = make_engine(pg_url)
    upgrade(engine)
    now = datetime.now(UTC)
    mail = ReminderMail("Someone", ("x@example.com",), "https://portal.acme.example", (), now.date())
    put(
        engine,
        list(reminders(Sender("acme", "Acme", "billing@acme.example"), mail, 40, now)),
        automatic=False,
        not_before=now - timedelta(minutes=1),
    )
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{pg_url}"\n[mail]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {smtp.port}\nsmtp_security = "none"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
    command = [sys.executable, "-m", "sync", "--config", str(config), "run", "--time-scale", "60"]
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        assert wait_for(lambda: len(recorder.received) >= 40, 90)
        delivered = datetime.now(UTC)
        # two more dispatch intervals pass (on either worker): nothing is sent again
        assert wait_for(lambda: _last_dispatch(engine) > delivered + timedelta(seconds=2), 30)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=30) for worker in workers]
        smtp.stop()
    assert codes == [0, 0]
    assert sorted(recorder.by_message_id().values()) == [1] * 40
    with engine.connect() as connection:
        assert connection.execute(text("SELECT status, COUNT(*) FROM outbox GROUP BY status")).all() == [
            ("sent", 40)
        ]
    engine.dispose()


def _last_dispatch(engine) -> datetime:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT last_run_at FROM fleet_jobs WHERE name = 'dispatch'"))


@contextmanager
def killed_mid_batch(store_url: str) -> Iterator[tuple[Engine, list[int], datetime, int, Recorder]]:
    """Ten reminders queued, and a dispatcher (worker "doomed") SIGKILLed as its third message
    was about to leave (`dispatch_die_mid_batch`); the store, the ids, the time, and the
    loopback SMTP server (its port, what it received) while the block runs."""
    recorder = Recorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    engine = make_engine(store_url)
    upgrade(engine)
    now = datetime.now(UTC)
    mail = ReminderMail("Someone", ("x@example.com",), "https://portal.acme.example", (), now.date())
    ids = put(
        engine,
        list(reminders(Sender("acme", "Acme", "billing@acme.example"), mail, 10, now)),
        automatic=False,
        not_before=now - timedelta(minutes=1),
    )
    try:
        command = [sys.executable, "-m", "tests.fleet.dispatch_die_mid_batch", store_url, str(smtp.port)]
        died = subprocess.run([*command, now.isoformat()], capture_output=True, timeout=120)
        assert died.returncode == -9, died.stderr.decode()
        yield engine, ids, now, smtp.port, recorder
    finally:
        smtp.stop()
        engine.dispose()


def test_a_worker_killed_mid_batch_leaves_in_doubt_only_what_it_had_begun(store_url: str):
    """Of a claimed batch of 10, the two delivered and the one begun stay in doubt (never
    re-sent); the seven never begun go back to the queue and are sent once by another."""
    with killed_mid_batch(store_url) as (engine, ids, now, port, recorder):
        assert len(recorder.received) == 2
        assert _statuses(engine) == {"sending": ids[:3], "claimed": ids[3:]}
        with engine.begin() as connection:
            assert expire_claims_of(connection, ["doomed"]) == ids[:3]
        assert _statuses(engine) == {"in_doubt": ids[:3], "queued": ids[3:]}
        transport = SmtpTransport("127.0.0.1", port, "none", timeout=5)
        report = dispatch(engine, transport, now=now, window_for=no_window, worker_id="survivor")
    assert report.sent == ids[3:]
    assert _statuses(engine) == {"in_doubt": ids[:3], "sent": ids[3:]}
    assert len(recorder.received) == 9 and sorted(recorder.by_message_id().values()) == [1] * 9


def test_mail_of_a_worker_killed_mid_batch_is_in_doubt_for_the_admin_with_no_worker_left(
    store_url: str, tmp_path: Path
):
    """With no worker left to settle a killed worker's mail, `status` showed "outbox: sending 3,
    claimed 7" and no message in doubt, and `mail resend|drop` refused a message "sending".
    `status` now shows the mail as it stands once settled, and resend/drop settle it first."""
    with killed_mid_batch(store_url) as (engine, ids, now, _, _):
        then = now - timedelta(minutes=5)  # an `arsync run` worker whose heartbeat has run out
        with engine.begin() as connection:
            connection.execute(
                insert(WorkerRow.__table__).values(
                    worker="doomed",
                    host="elsewhere",
                    pid=1,
                    concurrency=4,
                    started_at=then,
                    heartbeat_at=then,
                    running="[]",
                ),
                {"alive_until": then},
            )
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )
    cli = [sys.executable, "-m", "sync", "--config", str(config)]

    status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, timeout=60)
    [acme] = json.loads(status.stdout)
    assert acme["outbox"] == {"in_doubt": 3, "queued": 7}
    assert [doubt["id"] for doubt in acme["in_doubt"]] == ids[2::-1]
    text_status = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=60).stdout
    assert f"IN DOUBT:    message {ids[0]} to c0@example.com" in text_status

    dropped = subprocess.run([*cli, "mail", "drop", "acme", str(ids[0])], capture_output=True, text=True)
    resent = subprocess.run([*cli, "mail", "resend", "acme", str(ids[1])], capture_output=True, text=True)
    assert (dropped.returncode, resent.returncode) == (0, 0), dropped.stderr + resent.stderr
    engine = make_engine(store_url)
    try:
        assert _statuses(engine) == {"dropped": ids[:1], "queued": [ids[1], *ids[3:]], "in_doubt": ids[2:3]}
    finally:
        engine.dispose()


def _statuses(engine) -> dict[str, list[int]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT status, id FROM outbox ORDER BY id")).all()
    out: dict[str, list[int]] = {}
    for status, row_id in rows:
        out.setdefault(status, []).append(row_id)
    return out
