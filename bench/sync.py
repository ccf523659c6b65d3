"""Sync benchmarks against the simulators: full and incremental pulls, requests, time, memory.

Each measured sync runs in a child process (`bench.child`), so its peak RSS is its own; the
simulator runs here, and its counters say how many requests the sync made.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.simulators import mutations
from connectors.simulators.generator import generate_company
from connectors.simulators.model import SimCompany
from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero import XeroSimulator
from connectors.simulators.xero_limits import XeroLimits
from sync.cli import main as arsync

PAGE = 1000
UNLIMITED = 10**9


@dataclass
class Setup:
    kind: str
    sim: QuickBooksSimulator | XeroSimulator
    company: SimCompany
    config: Path


def minimum_requests(kind: str, company: SimCompany) -> int:
    """What the page limits allow at best: one request per 1000 records of each entity."""
    if kind == "quickbooks":
        customers = sum(1 for c in company.customers.values() if not c.deleted)
        invoices = sum(1 for i in company.invoices.values() if i.status != "deleted")
    else:
        customers = len(company.customers)
        invoices = sum(1 for i in company.invoices.values() if i.type == "ACCREC")
    return math.ceil(customers / PAGE) + math.ceil(invoices / PAGE)


def _simulator(kind: str, company: SimCompany, *, latency: float, real_limits: bool):
    if kind == "quickbooks":
        limits = {} if real_limits else {"per_minute": UNLIMITED, "concurrency": UNLIMITED}
        return QuickBooksSimulator(company, latency=latency, **limits)
    limits = XeroLimits() if real_limits else XeroLimits(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)
    return XeroSimulator([company], latency=latency, limits=limits)


def _config(directory: Path, kind: str, sim, company: SimCompany) -> Path:
    base = sim.api_url if kind == "quickbooks" else sim.accounting_url
    ids = f'realm_id = "{company.id}"' if kind == "quickbooks" else f'tenant_id = "{company.id}"'
    path = directory / "arsync.toml"
    path.write_text(f"""[store]
url = "sqlite:///{directory / "bench.db"}"
[log]
level = "warning"
[[companies]]
id = "bench"
name = "Bench"
[companies.connection]
kind = "{kind}"
{ids}
client_id = "{sim.tokens.client_id}"
client_secret_env = "BENCH_SECRET"
api_base_url = "{base}"
token_url = "{sim.token_url}"
""")
    os.environ["BENCH_SECRET"] = sim.tokens.client_secret
    return path


@contextmanager
def prepared(kind: str, invoices: int, *, latency: float = 0.0, real_limits: bool = False):
    """A generated company served by a simulator, and a migrated store with tokens."""
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    company = generate_company(
        kind, seed=7, customers=max(invoices // 10, 10), invoices=invoices, today=datetime.now(UTC).date()
    )
    with _simulator(kind, company, latency=latency, real_limits=real_limits) as sim:
        sim.prerender()
        directory = Path(tempfile.mkdtemp(prefix=f"arsync-bench-{kind}-"))
        config = _config(directory, kind, sim, company)
        pair = sim.tokens.issue()
        for args in (
            ["db", "upgrade"],
            [
                "auth",
                "set-tokens",
                "bench",
                "--access-token",
                pair.access_token,
                "--refresh-token",
                pair.refresh_token,
                "--expires-in",
                "86400",
            ],
        ):
            if arsync(["--config", str(config), *args]) != 0:
                raise RuntimeError(f"bench setup failed: arsync {' '.join(args[:2])}")
        yield Setup(kind, sim, company, config)


def run_child(setup: Setup, full: bool) -> dict:
    """One sync in a child process; its summary, wall time, peak RSS and the requests it made."""
    setup.sim.counters.reset()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.child", str(setup.config), "bench", "full" if full else "incremental"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != "ok":
        raise RuntimeError(f"bench sync failed: {result}")
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    result["requests"] = setup.sim.counters.total()
    result["requests_by_endpoint"] = dict(setup.sim.counters.requests)
    return result


def full_sync(kind: str, invoices: int) -> dict:
    with prepared(kind, invoices) as setup:
        result = run_child(setup, full=True)
        minimum = minimum_requests(kind, setup.company)
    api = sum(v for k, v in result["requests_by_endpoint"].items() if k != "token")
    return {
        "kind": kind,
        "invoices": invoices,
        "wall_seconds": result["wall_seconds"],
        "seconds_per_1000": round(result["wall_seconds"] / invoices * 1000, 3),
        "api_requests": api,
        "minimum_requests": minimum,
        "request_ratio": round(api / minimum, 2),
        "peak_rss_mb": result["peak_rss_mb"],
    }


def incremental_sync(kind: str, invoices: int, changes: int = 100) -> dict:
    """Requests and time of an incremental sync of `changes` payments after a full sync."""
    with prepared(kind, invoices) as setup:
        run_child(setup, full=True)
        at = datetime.now(UTC) + timedelta(seconds=2)
        open_ = [
            i
            for i in setup.company.invoices.values()
            if i.status == "open" and i.balance > 0 and i.type == "ACCREC"
        ][:changes]
        for invoice in open_:
            mutations.pay(setup.company, invoice.id, Decimal("1.00"), at)
        setup.sim.touch()
        setup.sim.prerender()  # the simulator re-indexes lazily; keep that out of the timed sync
        time.sleep(2.5)  # the incremental cursor overlaps by seconds; let "now" pass the changes
        result = run_child(setup, full=False)
    api = sum(v for k, v in result["requests_by_endpoint"].items() if k != "token")
    return {
        "kind": kind,
        "store_invoices": invoices,
        "changes": len(open_),
        "api_requests": api,
        "wall_seconds": result["wall_seconds"],
        "invoices_written": result["invoices"],
    }


def latency_sync(kind: str, invoices: int, latency: float = 0.15) -> dict:
    """Full sync with per-request latency and the real rate limits, against its lower bound."""
    with prepared(kind, invoices, latency=latency, real_limits=True) as setup:
        result = run_child(setup, full=True)
        minimum = minimum_requests(kind, setup.company)
    per_minute, concurrent = (500, 10) if kind == "quickbooks" else (60, 5)
    requests = sum(v for k, v in result["requests_by_endpoint"].items() if k != "token")
    bound = max(
        minimum * latency / concurrent,
        (minimum - per_minute) / per_minute * 60 if minimum > per_minute else 0.0,
    )
    return {
        "kind": kind,
        "invoices": invoices,
        "latency_ms": int(latency * 1000),
        "api_requests": requests,
        "wall_seconds": result["wall_seconds"],
        "lower_bound_seconds": round(bound, 2),
        "ratio": round(result["wall_seconds"] / bound, 2) if bound else None,
    }
