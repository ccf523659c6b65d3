"""Processes whose clocks disagree, on one PostgreSQL store (SPEC §11): a VM resumed from
suspend or a container without NTP runs seconds to minutes off. Real processes: an `arsync
run` worker on the real time, syncing a company from a slow QuickBooks simulator, and an
`arsync sync` whose clock runs 5 minutes ahead (`--now`, the one way to set a process's time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from mailer.claim import claim, start
from mailer.mails import ReminderMail, Sender
from mailer.outbox import OUTBOX
from store.db import make_engine
from store.fleet_tables import WorkerRow
from sync.app import App
from sync.config import load_config
from sync.jobs import JobContext, send
from tests.fleet.test_fleet import serving, wait_for
from tests.fleet.test_fleet_status_and_removal import add_stored_company, running_runs, start_worker
from tests.mailer.conftest import put, reminders


@pytest.fixture
def slower_fleet(pg_url: str, tmp_path: Path, monkeypatch):
    """QuickBooks holds each request for 120 s, until the test lets the sync finish
    (`sim.release()`): the worker's sync runs while a second process starts and tries the same
    company (with 8 s, a loaded machine's second process came after it had ended)."""
    with serving(pg_url, tmp_path, monkeypatch, latency=120.0) as fleet:
        fleet.config.write_text(f'[store]\nurl = "{pg_url}"\n')
        yield fleet


def test_a_process_whose_clock_runs_ahead_never_syncs_a_company_a_worker_is_syncing(slower_fleet):
    """Never two runs of a company at once: the sync's lease is judged on the database's
    clock, so a clock 5 minutes ahead (the lease's ttl) does not see a live worker's lease as
    expired and take the company over (the worker's run then died with "lost the sync lease")."""
    fleet = slower_fleet
    add_stored_company(fleet, "tenant")
    start_worker(fleet)
    assert wait_for(lambda: running_runs(fleet), 30), "the worker never started the due sync"
    [(_, worker)] = running_runs(fleet)

    ahead = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    command = [sys.executable, "-m", "sync", "--config", str(fleet.config), "sync", "tenant", "--json"]
    skewed = subprocess.run(
        [*command, "--now", ahead],
        env={k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    still_running = running_runs(fleet)
    fleet.sim.release()
    [summary] = [json.loads(line) for line in skewed.stdout.splitlines() if line.startswith("{")]
    assert summary["status"] == "skipped", (summary, skewed.stderr[-2000:])
    assert skewed.returncode == 1 and "tenant (skipped)" in skewed.stderr, skewed.stderr[-2000:]
    assert still_running == [("tenant", worker)], "the worker's sync ended before the other tried: too fast"
    assert wait_for(lambda: not running_runs(fleet), 60)
    assert fleet.rows("SELECT worker, status FROM sync_runs") == [(worker, "ok")]


def _live_worker_on_time(engine, worker: str) -> None:
    """The row a worker on the real time keeps: heartbeat now, alive two minutes more."""
    now = datetime.now(UTC)
    row = dict(worker=worker, host="elsewhere", pid=1, concurrency=4, running="[]")
    with engine.begin() as connection:
        connection.execute(
            insert(WorkerRow).values(
                **row, started_at=now, heartbeat_at=now, alive_until=now + timedelta(minutes=2)
            )
        )


def test_a_worker_whose_clock_runs_ahead_does_not_judge_a_live_one_dead(cli, tmp_path):
    """A dispatch settles the mail claims of dead workers first (`sync.jobs.send`): one whose
    clock ran 5 minutes ahead took a live worker's heartbeat for run out, turned the message
    it was delivering in doubt and took back the batch it was working through."""
    engine = make_engine(cli.store_url)
    live = "elsewhere:1:live:0000"
    _live_worker_on_time(engine, live)
    now = datetime.now(UTC)
    mail = ReminderMail("Someone", ("x@example.com",), "https://portal.acme.example", (), now.date())
    sender = Sender("acme", "Acme", "billing@acme.example")
    ids = put(engine, list(reminders(sender, mail, 3, now)), automatic=False, not_before=now)
    with engine.begin() as connection:
        claim(connection, now=now, worker_id=live, open_companies=[], limit=3, each=True)
        start(connection, ids[:1], live)  # the live worker is delivering the first
    app = App.open(load_config(cli.config))
    try:
        ahead = JobContext(
            app, app.config, lambda: datetime.now(UTC) + timedelta(minutes=5), lambda: False, "ahead"
        )
        send(ahead)
    finally:
        app.close()
    with engine.connect() as connection:
        left = connection.execute(select(OUTBOX.c.status, OUTBOX.c.claimed_by).order_by(OUTBOX.c.id)).all()
    engine.dispose()
    assert left == [("sending", live), ("claimed", live), ("claimed", live)]
