"""`./dev bench http`: requests per second of the portal API's read routes; webhook to visible.

A generated QuickBooks company of 10,000 customers is synced into SQLite; `arsync serve`
runs as its own process and is driven over loopback by client threads (keep-alive
connections), each asking for a random customer's invoices, balance, statement or accounts.
Then an `arsync run` worker is started and left to catch up until idle; an invoice is paid in
the simulator, a signed webhook is posted, and the time until the store shows the new
balance is measured (from an idle running worker each time).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import select, text

from bench.workdirs import scratch_dir
from connectors.simulators import mutations
from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.api_keys import create_key
from store.db import make_engine
from store.tables import Invoice
from sync.cli import main as arsync
from sync.http.webhook_events import signature

UNLIMITED = 10**9
VERIFIER = "bench-verifier-token"


def run(
    customers: int = 10_000,
    invoices: int = 30_000,
    seconds: float = 5.0,
    clients: int = 8,
) -> list[dict]:
    company = generate_company(
        "quickbooks", seed=11, customers=customers, invoices=invoices, today=datetime.now(UTC).date()
    )
    with QuickBooksSimulator(company, per_minute=UNLIMITED, concurrency=UNLIMITED) as sim:
        directory = scratch_dir("arsync-bench-http-")
        config = _prepare(directory, sim, company.id)
        engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
        _, key = create_key(engine, "bench", now=datetime.now(UTC))
        with engine.connect() as connection:
            refs = list(connection.scalars(text("SELECT customer_ref FROM portal_customers")))
            emails = list(connection.scalars(text("SELECT email FROM portal_accounts LIMIT 2000")))
        rows = []
        with _process(config, "serve", "--port", "0") as (_, log):
            base = _base_url(log)
            routes = {
                "invoices": lambda r: f"/v1/companies/bench/customers/{r.choice(refs)}/invoices",
                "balance": lambda r: f"/v1/companies/bench/customers/{r.choice(refs)}/balance",
                "statement": lambda r: f"/v1/companies/bench/customers/{r.choice(refs)}/statement",
                "accounts": lambda r: f"/v1/companies/bench/accounts?email={r.choice(emails)}",
            }
            for name, path in routes.items():
                rows.append(_load(base, key, name, path, seconds, clients) | {"customers": len(refs)})
            with _process(config, "run") as (_, worker_log):
                ready = _worker_idle(engine, since=time.monotonic(), timeout=180)
                rows.append(_webhook_latency(base, company, engine, worker_log, trials=5) | ready)
        engine.dispose()
    return rows


def _prepare(directory: Path, sim: QuickBooksSimulator, realm: str) -> Path:
    config = directory / "arsync.toml"
    config.write_text(f"""[store]
url = "sqlite:///{directory / "bench.db"}"
[log]
level = "warning"
[http]
quickbooks_verifier_token_env = "BENCH_QBO_VERIFIER"
[[companies]]
id = "bench"
name = "Bench"
sync_interval_minutes = 1440
[companies.connection]
kind = "quickbooks"
realm_id = "{realm}"
client_id = "{sim.tokens.client_id}"
client_secret_env = "BENCH_SECRET"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
""")
    os.environ["BENCH_SECRET"] = sim.tokens.client_secret
    os.environ["BENCH_QBO_VERIFIER"] = VERIFIER
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    pair = sim.tokens.issue()
    for args in (
        ["db", "upgrade"],
        ["auth", "set-tokens", "bench", "--access-token", pair.access_token,
         "--refresh-token", pair.refresh_token, "--expires-in", "86400"],
        ["sync"],
    ):  # fmt: skip
        if arsync(["--config", str(config), *args]) != 0:
            raise RuntimeError(f"bench setup failed: arsync {' '.join(args[:2])}")
    return config


@contextmanager
def _process(config: Path, *args: str):
    """`arsync --config CONFIG ARGS` as a process, stopped with SIGTERM afterwards."""
    log = config.with_name(f"{args[0]}.log")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sync", "--config", str(config), *args], stderr=out, stdout=out
        )
    try:
        yield process, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _base_url(log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+)", log.read_text())
        if found:
            try:
                if httpx.get(f"{found.group(1)}/healthz").status_code == 200:
                    return found.group(1)
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"arsync serve did not start: {log.read_text()[-2000:]}")


def _load(base: str, key: str, name: str, path, seconds: float, clients: int) -> dict:
    """`clients` threads asking `path(rng)` for `seconds`; requests/s and latency percentiles."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        mine, bad = [], 0
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
            while time.monotonic() < stop:
                began = time.perf_counter()
                status = client.get(path(rng)).status_code
                mine.append(time.perf_counter() - began)
                bad += status != 200
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    latencies.sort()
    return {
        "route": name,
        "requests_per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "errors": errors,
        "clients": clients,
    }


def _worker_idle(engine, *, since: float, timeout: float) -> dict:
    """Wait until a worker is registered and idle: the company not claimed and no request pending.

    A started worker first catches up (the sync due since set-up, the hourly health job and
    reminder planning over 10,000 customers); the trials measure a running worker, so they
    start after that, and each trial after the previous one's sync (and health) is done.
    """
    while time.monotonic() - since < timeout:
        with engine.connect() as connection:
            workers = connection.scalar(text("SELECT count(*) FROM workers"))
            busy = connection.scalar(
                text(
                    "SELECT count(*) FROM sync_schedule WHERE company_id = 'bench'"
                    " AND (claimed_by IS NOT NULL OR requested_at IS NOT NULL OR last_finished_at IS NULL)"
                )
            )
            jobs = connection.scalar(text("SELECT count(*) FROM fleet_jobs WHERE claimed_by IS NOT NULL"))
        if workers and not busy and not jobs:
            return {"worker_ready_seconds": round(time.monotonic() - since, 2)}
        time.sleep(0.05)
    raise RuntimeError(f"the worker was not idle within {timeout:.0f} s")


def _webhook_latency(base: str, company, engine, worker_log: Path, trials: int, deadline: float = 60) -> dict:
    """Seconds from a signed webhook (after a payment in the books) to the new balance in the view.

    A trial not visible within `deadline` counts as missed (the table says how many) and the
    worker's warnings and errors are reported with it, instead of ending the whole bench.
    """
    open_invoices = [
        i for i in company.invoices.values() if i.balance > Decimal("1.00") and i.status == "open"
    ]
    seconds, missed = [], 0
    for invoice in random.Random(5).sample(open_invoices, trials):
        _worker_idle(engine, since=time.monotonic(), timeout=120)
        mutations.pay(company, invoice.id, Decimal("1.00"), datetime.now(UTC))
        entity = {"name": "Invoice", "id": invoice.id, "operation": "Update"}
        body = json.dumps(
            {"eventNotifications": [{"realmId": company.id, "dataChangeEvent": {"entities": [entity]}}]}
        ).encode()
        began = time.monotonic()
        signed = {"intuit-signature": signature(VERIFIER, body)}
        answer = httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=signed)
        if answer.status_code != 200:
            raise RuntimeError(f"webhook answered {answer.status_code}")
        while _balance(engine, invoice.id) != invoice.balance and time.monotonic() - began < deadline:
            time.sleep(0.05)
        if _balance(engine, invoice.id) == invoice.balance:
            seconds.append(time.monotonic() - began)
        else:
            missed += 1
    seconds.sort()
    row = {
        "route": "webhook_to_visible",
        "median_seconds": round(seconds[len(seconds) // 2], 2) if seconds else None,
        "max_seconds": round(seconds[-1], 2) if seconds else None,
        "trials": trials,
        "missed": missed,
        "bar_seconds": 15,
    }
    if missed:
        row["worker_problems"] = [line[:300] for line in worker_log.read_text().splitlines()[-20:]]
    return row


def _balance(engine, invoice_ref: str) -> Decimal | None:
    invoices = Invoice.__table__
    query = select(invoices.c.balance).where(invoices.c.company_id == "bench", invoices.c.ref == invoice_ref)
    with engine.connect() as connection:
        return connection.scalar(query)
