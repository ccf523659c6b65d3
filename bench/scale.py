"""1,000 companies across 3 `arsync run` workers on PostgreSQL (SPEC §11, issue #14).

Every company has small simulated QuickBooks books behind a simulator with latency per
request and the real limits. The workers run for several sync intervals; then:
- syncs per company per interval (bar: 1.0 ± 0.05), counted after the first interval;
- overlapping runs of one company (bar: 0) and 429s at the simulator (bar: 0);
- each worker's CPU (share of one core) and peak RSS;
- scheduling delay, due → started, median and p99 (from the workers' `daemon.sync_claimed`).
Sizes: ARSYNC_BENCH_SCALE="companies,workers,interval_minutes,intervals" (default 1000,3,3,3).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.workdirs import scratch_dir
from connectors.base import Tokens
from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.companies import CompanyRow, register_companies
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.db import make_engine, upgrade

LATENCY = 0.02  # seconds per simulated API request
TICKS = os.sysconf("SC_CLK_TCK")


def _company(n: int, sim: QuickBooksSimulator) -> str:
    realm = str(9_130_000_000_000_000 + n)
    return f"""
[[companies]]
id = "c{n:04d}"
name = "Company {n}"
sync_interval_minutes = {{interval}}
[companies.connection]
kind = "quickbooks"
realm_id = "{realm}"
client_id = "{sim.tokens.client_id}"
client_secret_env = "BENCH_QBO_SECRET"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
"""


def _prepare(url: str, sim: QuickBooksSimulator, companies: int, interval: int, workdir: Path) -> Path:
    today = datetime.now(UTC).date()
    for n in range(companies):
        realm = str(9_130_000_000_000_000 + n)
        sim.add_company(
            generate_company("quickbooks", seed=n, customers=3, invoices=6, today=today, company_id=realm)
        )
    config = workdir / "arsync.toml"
    body = "".join(_company(n, sim).replace("{interval}", str(interval)) for n in range(companies))
    config.write_text(f'[store]\nurl = "{url}"\n[log]\nlevel = "info"\n[daemon]\nconcurrency = 4\n' + body)
    engine = make_engine(url)
    upgrade(engine)
    register_companies(
        engine, [CompanyRow(f"c{n:04d}", f"Company {n}", "UTC", "quickbooks") for n in range(companies)]
    )
    expires = datetime.now(UTC) + timedelta(days=1)
    for n in range(companies):
        pair = sim.tokens.issue()
        DbCredentials(engine, f"c{n:04d}", SecretBox(None)).save(
            Tokens(pair.access_token, pair.refresh_token, expires, expires + timedelta(days=90))
        )
    engine.dispose()
    return config


def _cpu_and_peak(pid: int) -> tuple[float, int]:
    """CPU seconds so far and peak RSS (kB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    peak = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM")
    )
    return cpu, int(peak.split()[1])


def _runs(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT company_id, started_at, finished_at, status FROM sync_runs ORDER BY started_at")
        ).all()
    engine.dispose()
    out: dict[str, list[tuple]] = {}
    for company, started, finished, status in rows:
        out.setdefault(company, []).append((started, finished, status))
    return out


def _delays(logs: list[Path], since: datetime) -> list[float]:
    out = []
    for log in logs:
        for line in log.read_text().splitlines():
            if '"daemon.sync_claimed"' in line:
                event = json.loads(line)
                if datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) >= since:
                    out.append(event["delay"])
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(pg: str, companies: int = 1000, workers: int = 3, interval: int = 2, intervals: int = 4) -> dict:
    """Run `workers` workers over `companies` companies for 1 + `intervals` intervals of `interval` min,
    in a PostgreSQL schema of its own on the database `pg`, dropped afterwards."""
    with _own_schema(pg) as url:
        return _run(url, companies, workers, interval, intervals)


@contextmanager
def _own_schema(pg: str) -> Iterator[str]:
    """A fresh schema `bench_scale_PID` (the URL with its search_path), dropped at the end."""
    schema = f"bench_scale_{os.getpid()}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{pg}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def _run(url: str, companies: int, workers: int, interval: int, intervals: int) -> dict:
    workdir = scratch_dir("arsync-bench-scale-")
    with QuickBooksSimulator(latency=LATENCY) as sim:
        os.environ["BENCH_QBO_SECRET"] = sim.tokens.client_secret
        config = _prepare(url, sim, companies, interval, workdir)
        logs = [workdir / f"worker{n}.log" for n in range(workers)]
        env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
        command = [sys.executable, "-m", "sync", "--config", str(config), "run"]
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
            for log in logs
        ]
        started = datetime.now(UTC)
        time.sleep(interval * 60)  # the first interval: every company's first (full) sync
        measured_from = datetime.now(UTC)
        time.sleep(interval * 60 * intervals)
        measured_to = datetime.now(UTC)
        usage = [_cpu_and_peak(p.pid) for p in processes]
        wall = (measured_to - started).total_seconds()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=120) for process in processes]
        violations = sum(sim.counters.violations.values())
    runs = _runs(url)
    per_company = [
        sum(
            1
            for s, _, status in runs.get(f"c{n:04d}", [])
            if measured_from <= s < measured_to and status == "ok"
        )
        / intervals
        for n in range(companies)
    ]
    overlaps = sum(
        1
        for rows in runs.values()
        for a, b in zip(rows, rows[1:], strict=False)
        if a[1] is None or b[0] < a[1]
    )
    delays = _delays(logs, measured_from)
    return {
        "companies": companies,
        "workers": workers,
        "interval_s": interval * 60,
        "intervals_measured": intervals,
        "syncs_per_company_per_interval": round(statistics.mean(per_company), 3),
        "min_per_company": round(min(per_company), 3),
        "max_per_company": round(max(per_company), 3),
        "overlaps": overlaps,
        "rate_limit_violations": violations,
        "worker_cpu_percent": [round(100 * cpu / wall, 1) for cpu, _ in usage],
        "worker_peak_rss_mb": [round(peak / 1024, 1) for _, peak in usage],
        "delay_median_s": round(statistics.median(delays), 3) if delays else None,
        "delay_p99_s": round(_percentile(delays, 0.99), 3),
        "exit_codes": codes,
    }
