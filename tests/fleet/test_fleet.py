"""Several `arsync run` workers on one PostgreSQL store, as real processes (SPEC §11).

Time runs 20 times faster (`--time-scale 20`): a one-minute sync interval lasts 3 s, a
claim not renewed expires after 6 s, stored companies are re-read every 1.5 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.base import Tokens
from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.db import make_engine, upgrade
from sync.cli import main

SCALE = 20
INTERVAL = 60 / SCALE  # seconds: sync_interval_minutes = 1
COMPANIES = [f"co{n:02d}" for n in range(24)]


def company_block(cid: str, sim: QuickBooksSimulator, realm: str) -> str:
    return f"""
[[companies]]
id = "{cid}"
name = "{cid.upper()} Ltd"
sync_interval_minutes = 1
[companies.connection]
kind = "quickbooks"
realm_id = "{realm}"
client_id = "{sim.tokens.client_id}"
client_secret_env = "FLEET_QBO_SECRET"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
"""


class Fleet:
    def __init__(self, pg_url: str, sim: QuickBooksSimulator, tmp: Path) -> None:
        self.url, self.sim, self.tmp = pg_url, sim, tmp
        self.engine = make_engine(pg_url)
        self.config = tmp / "arsync.toml"
        self.workers: list[subprocess.Popen] = []

    def add_realm(self, cid: str, seed: int) -> str:
        realm = str(9_130_000_000_000_100 + seed)
        self.sim.add_company(
            generate_company(
                "quickbooks",
                seed=seed,
                customers=3,
                invoices=6,
                today=datetime.now(UTC).date(),
                company_id=realm,
            )
        )
        return realm

    def connect(self, cid: str) -> None:
        pair = self.sim.tokens.issue()
        expires = datetime.now(UTC) + timedelta(hours=1)
        DbCredentials(self.engine, cid, SecretBox(None)).save(
            Tokens(pair.access_token, pair.refresh_token, expires, expires + timedelta(days=90))
        )

    def cli(self, *args: str) -> int:
        return main(["--config", str(self.config), *args])

    def start(self, count: int, scale: float = SCALE) -> None:
        env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
        command = [
            sys.executable,
            "-m",
            "sync",
            "--config",
            str(self.config),
            "run",
            "--time-scale",
            str(scale),
        ]
        for _ in range(count):
            log = (self.tmp / f"worker{len(self.workers)}.log").open("w")  # a file: a pipe could fill up
            self.workers.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log))

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def runs(self) -> dict[str, list[tuple]]:
        out: dict[str, list[tuple]] = {}
        for row in self.rows(
            "SELECT company_id, started_at, finished_at, status, worker FROM sync_runs ORDER BY started_at"
        ):
            out.setdefault(row[0], []).append(row[1:])
        return out

    def stop(self) -> list[int]:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        try:
            codes = [worker.wait(timeout=30) for worker in self.workers]
        except subprocess.TimeoutExpired:
            stuck = [worker for worker in self.workers if worker.poll() is None]
            for worker in stuck:  # each thread's stack into its log (`sync/daemon.py`), then gone
                worker.send_signal(signal.SIGUSR1)
            time.sleep(1)
            for worker in stuck:
                worker.kill()
                worker.wait()
            self._print_logs(6000)
            raise AssertionError(f"{len(stuck)} worker(s) still running 30 s after SIGTERM") from None
        self._print_logs(3000)
        return codes

    def _print_logs(self, tail: int) -> None:
        for log in sorted(self.tmp.glob("worker*.log")):
            print(log.read_text()[-tail:])  # shown when the test fails


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@contextmanager
def serving(pg_url: str, tmp_path: Path, monkeypatch, *, latency: float) -> Iterator[Fleet]:
    """A QuickBooks simulator answering after `latency` and a migrated store for a fleet;
    its workers are stopped at the end. The caller writes the configuration."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    monkeypatch.delenv("ARSYNC_SECRET_KEY", raising=False)
    with QuickBooksSimulator(latency=latency) as sim:
        monkeypatch.setenv("FLEET_QBO_SECRET", sim.tokens.client_secret)
        fleet = Fleet(pg_url, sim, tmp_path)
        upgrade(fleet.engine)
        try:
            yield fleet
        finally:
            fleet.stop()
            fleet.engine.dispose()


@pytest.fixture
def fleet(pg_url: str, tmp_path: Path, monkeypatch):
    with serving(pg_url, tmp_path, monkeypatch, latency=0.02) as fleet:
        blocks = [company_block(cid, fleet.sim, fleet.add_realm(cid, n)) for n, cid in enumerate(COMPANIES)]
        fleet.config.write_text(f'[store]\nurl = "{pg_url}"\n[log]\nlevel = "info"\n' + "".join(blocks))
        yield fleet


def starts(runs: list[tuple], since: datetime) -> list[datetime]:
    return [started for started, _, status, _ in runs if started >= since and status != "interrupted"]


def test_three_workers_sync_each_company_once_per_interval(fleet):
    stored = fleet.tmp / "more.toml"
    stored.write_text(
        "".join(
            company_block(c, fleet.sim, fleet.add_realm(c, 50 + n)) for n, c in enumerate(("late", "gone"))
        )
    )
    assert fleet.cli("company", "add", str(stored)) == 0  # registers the file's companies too
    for cid in [*COMPANIES, "gone"]:
        fleet.connect(cid)
    fleet.start(3)
    assert wait_for(lambda: len(fleet.runs()) >= len(COMPANIES) + 1, 90), fleet.runs().keys()
    began = datetime.now(UTC)

    # a request is honoured within seconds; "late" (stored, connected only now) starts syncing
    assert fleet.cli("sync", "--request", "co00") == 0
    fleet.connect("late")
    assert wait_for(lambda: starts(fleet.runs().get("co00", []), began), 10)
    assert wait_for(lambda: [r for r in fleet.runs().get("late", []) if r[2] == "ok"], 30)

    # removing a stored company stops its syncs within a refresh
    assert fleet.cli("company", "remove", "gone") == 0
    removed = datetime.now(UTC) + timedelta(seconds=2)

    # SIGKILL a worker in the middle of a sync: another one takes its company over
    claimed: list[tuple] = []  # the claim seen, kept: a short sync may be over by a second look

    def claim() -> list[tuple]:
        claimed[:] = fleet.rows(
            "SELECT company_id, claimed_by FROM sync_schedule WHERE claimed_by IS NOT NULL"
        )
        return claimed

    assert wait_for(claim, 10)
    company, owner = claimed[0]
    [(pid,)] = fleet.rows("SELECT pid FROM workers WHERE worker = :w", w=owner)
    [victim] = [worker for worker in fleet.workers if worker.pid == pid]
    victim.kill()
    victim.wait()  # reaped: a zombie would still look alive to the lease's dead-owner check
    killed = datetime.now(UTC)
    assert wait_for(
        lambda: [r for r in fleet.runs()[company] if r[0] > killed and r[3] != owner and r[2] == "ok"], 30
    )
    time.sleep(3 * INTERVAL)  # three more intervals with the two survivors
    ended = datetime.now(UTC)
    codes = fleet.stop()

    runs = fleet.runs()
    assert sorted(codes) == [-signal.SIGKILL, 0, 0]
    assert len({worker for rows in runs.values() for *_, worker in rows}) == 3  # all three took part
    window = (ended - began).total_seconds()
    for cid in COMPANIES[1:]:
        rows = runs[cid]
        for (_, finished, _, _), (started, *_rest) in zip(rows, rows[1:], strict=False):
            assert finished is not None and started >= finished, f"{cid}: overlapping runs"
        seen = starts(rows, began)
        gaps = [(b - a).total_seconds() for a, b in zip(seen, seen[1:], strict=False)]
        assert min(gaps) > 0.5 * INTERVAL, (cid, gaps)  # never twice in one interval
        assert 1 <= len(seen) <= window / INTERVAL + 1, (cid, len(seen), window)
    assert not [r for r in runs.get("gone", []) if r[0] > removed]
    assert fleet.rows("SELECT COUNT(*) FROM companies WHERE company_id = 'gone'") == [(1,)]  # rows stay
    assert sum(fleet.sim.counters.violations.values()) == 0


def test_five_processes_start_at_once_on_a_fresh_store(fleet):
    env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
    # a command that may write registers and schedules the file's companies, all five at once
    command = [sys.executable, "-m", "sync", "--config", str(fleet.config), "reminders", "plan", "--dry-run"]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(5)
    ]
    results = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0] * 5, [err for _, err in results]
    listed = subprocess.run(
        [*command[:5], "company", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert len(json.loads(listed.stdout)) == len(COMPANIES), listed.stderr
    assert fleet.rows("SELECT COUNT(*) FROM companies") == [(len(COMPANIES),)]
    assert fleet.rows("SELECT COUNT(*) FROM sync_schedule") == [(len(COMPANIES),)]
