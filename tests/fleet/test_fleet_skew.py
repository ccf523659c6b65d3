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

from tests.fleet.test_fleet import serving, wait_for
from tests.fleet.test_fleet_status_and_removal import add_stored_company, running_runs, start_worker


@pytest.fixture
def slower_fleet(pg_url: str, tmp_path: Path, monkeypatch):
    """QuickBooks answers each request after 8 s: a first sync runs for 8 s or more, long
    enough for a second process to start and try the same company meanwhile."""
    with serving(pg_url, tmp_path, monkeypatch, latency=8.0) as fleet:
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
    [summary] = [json.loads(line) for line in skewed.stdout.splitlines() if line.startswith("{")]
    assert summary["status"] == "skipped", (summary, skewed.stderr[-2000:])
    assert skewed.returncode == 1 and "tenant (skipped)" in skewed.stderr, skewed.stderr[-2000:]
    assert still_running == [("tenant", worker)], "the worker's sync ended before the other tried: too fast"
    assert wait_for(lambda: not running_runs(fleet), 60)
    assert fleet.rows("SELECT worker, status FROM sync_runs") == [(worker, "ok")]
