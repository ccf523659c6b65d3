"""A requested sync whose worker is SIGKILLed mid-run (SPEC §11): `arsync status` says it was
interrupted once the claim expires, not "running now" on a dead worker, and a surviving
worker resumes it, although the company is not due for an hour (the claim had taken the
request with it). Real processes on PostgreSQL, QuickBooks answering after 2 s, time 20
times faster (a claim not renewed expires after 6 s)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from store.schedule import schedule_row
from tests.fleet.test_fleet import company_block, serving, wait_for

HOURLY = "sync_interval_minutes = 60"


def test_a_killed_workers_requested_sync_is_resumed_and_shown_interrupted(
    pg_url, tmp_path, monkeypatch, capsys
):
    with serving(pg_url, tmp_path, monkeypatch, latency=2.0) as fleet:
        block = company_block("acme", fleet.sim, fleet.add_realm("acme", 1))
        fleet.config.write_text(
            f'[store]\nurl = "{pg_url}"\n' + block.replace("sync_interval_minutes = 1", HOURLY)
        )
        fleet.start(1)
        assert wait_for(lambda: schedule_row(fleet.engine, "acme") is not None, 30)
        fleet.connect("acme")  # once the worker has registered the company
        assert fleet.cli("sync", "--request", "acme") == 0
        idle = lambda: (row := schedule_row(fleet.engine, "acme")) and row["last_status"] == "ok"  # noqa: E731
        assert wait_for(idle, 90), schedule_row(fleet.engine, "acme")
        [victim] = fleet.workers
        asked = datetime.now(UTC)
        assert fleet.cli("sync", "--request", "acme") == 0
        running = "SELECT COUNT(*) FROM sync_runs WHERE status = 'running' AND started_at >= :t"
        assert wait_for(lambda: fleet.rows(running, t=asked)[0][0] == 1, 20)
        owner = schedule_row(fleet.engine, "acme")["claimed_by"]
        victim.kill()
        victim.wait()  # reaped: a zombie would still look alive to the lease's dead-owner check

        expired = lambda: schedule_row(fleet.engine, "acme")["claimed_until"] < datetime.now(UTC)  # noqa: E731
        assert wait_for(expired, 20)
        capsys.readouterr()
        assert fleet.cli("status", "--json") == 0
        [shown] = [row for row in json.loads(capsys.readouterr().out) if row["company"] == "acme"]
        assert shown["next_sync"].startswith(f"interrupted on {owner}"), shown["next_sync"]

        killed = datetime.now(UTC)
        fleet.start(1)  # a survivor
        resumed = (
            "SELECT COUNT(*) FROM sync_runs WHERE company_id = 'acme' AND status = 'ok' AND started_at >= :t"
        )
        assert wait_for(lambda: fleet.rows(resumed, t=killed)[0][0] >= 1, 60), schedule_row(
            fleet.engine, "acme"
        )
        row = schedule_row(fleet.engine, "acme")
        assert row["next_due_at"] > datetime.now(UTC)  # not due: only the unfinished run brought it on
