"""A worker keeps one slot for requested syncs (`sync.daemon.KEPT_FOR_REQUESTS`).

Every other slot busy with a slow sync, a request (a webhook's, a portal's) still starts at
once instead of waiting for one of them to end. A real `arsync run` process against a
QuickBooks simulator answering each request after 2.5 s, on both stores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text, update

from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.db import make_engine, upgrade
from store.fleet_tables import SyncSchedule
from store.schedule import ensure_scheduled, request_sync, schedule_row
from sync.cli import main

LATENCY = 2.5  # seconds per API request: each sync here takes at least this long
DUE = ["a", "b", "d"]  # due at once: with 3 slots, one kept for requests, two of them run
ASKED = "c"  # not due for a day: only a request syncs it


def _company(cid: str, sim: QuickBooksSimulator, realm: str) -> str:
    return f"""
[[companies]]
id = "{cid}"
name = "{cid.upper()} Ltd"
sync_interval_minutes = 1440
[companies.connection]
kind = "quickbooks"
realm_id = "{realm}"
client_id = "{sim.tokens.client_id}"
client_secret_env = "LANE_QBO_SECRET"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
"""


def test_a_request_starts_at_once_while_the_other_slots_run_slow_syncs(
    store_url, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_SECRET_KEY")}
    engine = make_engine(store_url)
    upgrade(engine)
    today = datetime.now(UTC).date()
    with QuickBooksSimulator(latency=LATENCY) as sim:
        env["LANE_QBO_SECRET"] = sim.tokens.client_secret
        blocks, pairs = [], {}
        for n, cid in enumerate([*DUE, ASKED]):
            realm = str(9_130_000_000_000_300 + n)
            sim.add_company(generate_company("quickbooks", seed=n, customers=2, invoices=3, today=today,
                                             company_id=realm))  # fmt: skip
            blocks.append(_company(cid, sim, realm))
            pairs[cid] = sim.tokens.issue()
        config = tmp_path / "arsync.toml"
        config.write_text(f'[store]\nurl = "{store_url}"\n[daemon]\nconcurrency = 3\n' + "".join(blocks))
        for cid, pair in pairs.items():
            tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
            assert (
                main(["--config", str(config), "auth", "set-tokens", cid, *tokens, "--expires-in", "3600"])
                == 0
            )
        ensure_scheduled(engine, [*DUE, ASKED], now=datetime.now(UTC))
        with engine.begin() as connection:
            connection.execute(
                update(SyncSchedule)
                .where(SyncSchedule.company_id == ASKED)
                .values(next_due_at=datetime.now(UTC) + timedelta(days=1))
            )
        log = (tmp_path / "run.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "sync", "--config", str(config), "run"], env=env, stderr=log, stdout=log
        )
        try:
            assert _wait(lambda: len(_running(engine)) == 2, 30), "the two scheduled syncs never started"
            asked_at = datetime.now(UTC)
            assert request_sync(engine, ASKED, now=asked_at, reason="webhook")
            assert _wait(lambda: (schedule_row(engine, ASKED)["last_started_at"] or asked_at) > asked_at, 10)
            started = schedule_row(engine, ASKED)["last_started_at"]
            assert _wait(lambda: ASKED in _running(engine), 5), "the requested sync never began its run"
            running_then = _running(engine)
            assert _wait(
                lambda: all(schedule_row(engine, c)["last_status"] == "ok" for c in [*DUE, ASKED]), 60
            )
            runs = _runs(engine)
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(30)
            engine.dispose()
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
    delay = (started - asked_at).total_seconds()
    # it started while both scheduled syncs still ran (each takes 2.5 s at least), not after one
    assert delay < 1.5, (delay, runs)
    assert ASKED in running_then and len(running_then) == 3, running_then
    # the third due company waited for a scheduled slot: the kept one stayed free for requests
    first_two = sorted(runs[c][1] for c in ("a", "b"))
    assert runs["d"][0] >= first_two[0], runs


def _running(engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT company_id FROM sync_runs WHERE status = 'running'"))
        return {row[0] for row in rows}


def _runs(engine) -> dict[str, tuple[datetime, datetime]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT company_id, started_at, finished_at FROM sync_runs"))
        return {row[0]: (_aware(row[1]), _aware(row[2])) for row in rows}


def _aware(moment: datetime | str) -> datetime:
    moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
