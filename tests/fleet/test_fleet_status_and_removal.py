"""`arsync run` workers on PostgreSQL seen from outside (SPEC §11), cases an audit found:
real worker processes, the QuickBooks simulator with latency (so a sync is still running
when we look), the CLI.

Each worker runs at the real time scale (1): what an operator sees.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailer.mails import ReminderMail, Sender
from store.db import make_engine
from store.tables import metadata
from sync.cli import main
from tests.fleet.conftest import company_toml
from tests.fleet.test_fleet import Fleet, company_block, serving, wait_for
from tests.mailer.conftest import put, reminders
from tests.mailer.smtp_server import LoopbackController, Recorder


@pytest.fixture
def slow_fleet(pg_url: str, tmp_path: Path, monkeypatch):
    """A fleet whose QuickBooks holds each request for 120 s, until the test has looked and
    lets the sync finish (`sim.release()`): with 3 s, a loaded machine's `status` subprocess
    came after the sync had ended."""
    with serving(pg_url, tmp_path, monkeypatch, latency=120.0) as fleet:
        fleet.config.write_text(f'[store]\nurl = "{pg_url}"\n')
        yield fleet


def add_stored_company(fleet: Fleet, cid: str) -> None:
    """`arsync company add` one company (registered and scheduled), then connect it."""
    path = fleet.tmp / f"{cid}.toml"
    path.write_text(company_block(cid, fleet.sim, fleet.add_realm(cid, 7)))
    assert fleet.cli("company", "add", str(path)) == 0
    fleet.connect(cid)


def start_worker(fleet: Fleet) -> subprocess.Popen:
    """One `arsync run` at the real time scale."""
    env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
    log = (fleet.tmp / f"worker{len(fleet.workers)}.log").open("w")
    command = [sys.executable, "-m", "sync", "--config", str(fleet.config), "run"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    fleet.workers.append(worker)
    return worker


def running_runs(fleet: Fleet) -> list[tuple]:
    return fleet.rows("SELECT company_id, worker FROM sync_runs WHERE status = 'running'")


def test_status_workers_shows_the_sync_a_worker_is_running(slow_fleet):
    """SPEC §11: `status --workers [--json]` lists the live workers "and what each is doing".

    A worker's `running` list is written only with its heartbeat (every 30 s at the real
    time scale), so a sync started after the worker's first heartbeat is not shown for up
    to 30 s (a sync shorter than that never is): here the worker is syncing `tenant` and
    `status --workers --json` says it runs nothing.
    """
    fleet = slow_fleet
    add_stored_company(fleet, "tenant")
    start_worker(fleet)
    assert wait_for(lambda: running_runs(fleet), 30), "the worker never started the due sync"
    [(_, run_worker)] = running_runs(fleet)

    listed = subprocess.run(
        [sys.executable, "-m", "sync", "--config", str(fleet.config), "status", "--workers", "--json"],
        env={k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    still_running = running_runs(fleet)
    assert listed.returncode == 0, listed.stderr
    [worker] = json.loads(listed.stdout)
    fleet.sim.release()
    assert still_running == [("tenant", run_worker)], "the sync ended before status looked: too fast"
    assert worker["worker"] == run_worker
    assert worker["running"] == ["tenant"], worker


def company_rows_left(fleet: Fleet, cid: str) -> dict[str, int]:
    """Rows of `cid` in every table with a company_id column (the ones --purge deletes)."""
    left = {}
    for table in metadata.sorted_tables:
        if "company_id" in table.c:
            [(count,)] = fleet.rows(f"SELECT COUNT(*) FROM {table.name} WHERE company_id = :c", c=cid)
            if count:
                left[table.name] = count
    return left


def test_purge_while_a_sync_runs_leaves_no_rows_of_the_company(slow_fleet):
    """SPEC §11: "a run in progress when its company is removed finishes, and the company's
    stored rows stay until `arsync company remove ID --purge`"; README: `--purge` deletes them.

    `company remove tenant --purge` during the company's first sync answers "removed tenant
    and purged its rows"; the run then goes on committing pages and leaves the customers and
    invoices it wrote after the purge (and its `sync_runs` row is gone, so nothing records
    the run either).
    """
    fleet = slow_fleet
    add_stored_company(fleet, "tenant")
    worker = start_worker(fleet)
    assert wait_for(lambda: running_runs(fleet), 30), "the worker never started the due sync"
    assert not fleet.rows("SELECT 1 FROM invoices WHERE company_id = 'tenant'")  # nothing committed yet

    assert fleet.cli("company", "remove", "tenant", "--purge") == 0
    fleet.sim.release()

    # the run in progress finishes (its lease is let go), the worker stays up
    assert wait_for(lambda: not fleet.rows("SELECT 1 FROM leases WHERE name = 'sync:tenant'"), 30)
    assert worker.poll() is None
    left = company_rows_left(fleet, "tenant")
    left.pop("pacing", None)  # the API budget counter, not the company's data
    assert left == {}, f"rows of the purged company written after the purge: {left}"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0


SUNDAY_3AM = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # outside a Monday-Friday 9-17 window


def test_a_removed_company_s_automatic_mail_is_not_sent_outside_its_delivery_window(
    pg_url: str, tmp_path: Path, monkeypatch
):
    """SPEC (intro, §5): automatic reminders are sent "only inside each company's delivery
    window". After `arsync company remove acme` (no --purge: its rows, outbox included, stay)
    the dispatcher no longer knows acme's window (`sync.mail.window_for` answers None,
    "unrestricted", for an unknown company), so acme's queued automatic reminder is mailed at
    3 am on a Sunday, by `arsync mail dispatch` and by every worker's dispatch job alike.
    """
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    recorder = Recorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    try:
        config = tmp_path / "arsync.toml"
        config.write_text(
            f'[store]\nurl = "{pg_url}"\n[mail]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
            f'smtp_port = {smtp.port}\nsmtp_security = "none"\n'
        )
        tenant = tmp_path / "tenant.toml"
        tenant.write_text(
            company_toml("acme", timezone="UTC", delivery_days=["mon", "tue", "wed", "thu", "fri"])
        )

        def cli(*args: str) -> int:
            return main(["--config", str(config), *args])

        assert cli("db", "upgrade") == 0
        assert cli("company", "add", str(tenant)) == 0
        engine = make_engine(pg_url)
        mail = ReminderMail(
            "Someone", ("x@example.com",), "https://portal.acme.example", (), SUNDAY_3AM.date()
        )
        sender = Sender("acme", "Acme", "billing@acme.example")
        put(engine, list(reminders(sender, mail, 1, SUNDAY_3AM)), automatic=True, not_before=SUNDAY_3AM)
        engine.dispose()

        assert cli("mail", "dispatch", "--now", SUNDAY_3AM.isoformat()) == 0
        assert recorder.received == []  # the window is closed: it waits for Monday 9:00

        assert cli("company", "remove", "acme") == 0
        assert cli("mail", "dispatch", "--now", SUNDAY_3AM.isoformat()) == 0
        assert recorder.received == [], "an automatic reminder went out at 3 am on a Sunday"
    finally:
        smtp.stop()
