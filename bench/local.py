"""Local processing alone: raw QuickBooks JSON pages -> normalize -> rules -> upsert, no HTTP.

The pages of a full pull (customers, invoices, payments, credit memos) are fetched from the
simulator first (untimed), then replayed: the timed part is reading each page into records
as a full pull does (`connectors.quickbooks.listed`: typed msgspec structs, exact Decimal,
or decoding and normalizing row by row for a page of another shape), the portal rules and
the set-based upserts, page by page with their cursors, exactly as a sync does. A second
run replays the same pages normalized beforehand, so its time is the store's write path
alone. Target (SPEC section 8): 100,000 invoices in under 5 s on SQLite on a 2-core machine.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import requests

from connectors.quickbooks.listed import listed
from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from portal_rules.records import Page
from portal_rules.types import CompanyPolicy
from store.companies import CompanyRow, register_companies
from store.db import make_engine, upgrade
from sync.orchestrator import sync_company

# (entity, QuickBooks table, WHERE clause) in the order a full pull reads them
ENTITIES = (
    ("customers", "Customer", " WHERE Active IN (true,false)"),
    ("invoices", "Invoice", ""),
    ("payments", "Payment", ""),
    ("credits", "CreditMemo", ""),
)


def fetch_pages(invoices: int) -> list[tuple[str, bytes]]:
    """Every query page of a generated company of `invoices` invoices, as raw response bodies."""
    company = generate_company(
        "quickbooks", seed=7, customers=invoices // 10, invoices=invoices, today=datetime.now(UTC).date()
    )
    pages: list[tuple[str, bytes]] = []
    with QuickBooksSimulator(company) as sim:
        sim.prerender()
        access, _ = sim.tokens.issue()
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {access}", "Accept": "application/json"})
        for entity, table, where in ENTITIES:
            start = 1
            while True:
                query = f"SELECT * FROM {table}{where} ORDERBY Id STARTPOSITION {start} MAXRESULTS 1000"
                body = session.get(
                    f"{sim.api_url}/company/{company.id}/query?query={quote(query)}&minorversion=75",
                    timeout=60,
                ).content
                pages.append((entity, body))
                rows = json.loads(body)["QueryResponse"].get(table, [])
                if len(rows) < 1000:
                    break
                start += 1000
    return pages


def normalized(index: int, last: int, entity: str, body: bytes) -> Page:
    """One raw page read into records as a full pull reads it, with its cursor."""
    page = listed(body, entity, "USD")
    if page is None:
        raise RuntimeError(f"the simulator's {entity} page {index} is not a query answer")
    return Page(
        entity,
        tuple(page.records),
        quarantined=tuple(page.quarantined),
        cursor={"page": index + 1},
        api_calls=1,
        full_sync_complete=index == last,
    )


@dataclass
class ReplaySource:
    """Raw pages, decoded and normalized as they are read: the whole local processing."""

    pages_raw: list[tuple[str, bytes]]
    kind: str = "replay"

    def pages(self, cursor: dict | None, *, full: bool = False) -> Iterator[Page]:
        last = len(self.pages_raw) - 1
        for index, (entity, body) in enumerate(self.pages_raw):
            yield normalized(index, last, entity, body)


@dataclass
class PreparedSource:
    """Pages normalized before the clock starts: a sync over them times the write path alone."""

    prepared: list[Page]
    kind: str = "prepared"

    def pages(self, cursor: dict | None, *, full: bool = False) -> Iterator[Page]:
        return iter(self.prepared)


def prepare(pages: list[tuple[str, bytes]]) -> list[Page]:
    return [normalized(index, len(pages) - 1, entity, body) for index, (entity, body) in enumerate(pages)]


def run(pages: list[tuple[str, bytes]], store_url: str | None = None, *, write_only: bool = False) -> dict:
    """One full sync of the replayed pages into a fresh store; `write_only` normalizes them untimed first."""
    scratch = None if store_url else tempfile.TemporaryDirectory(prefix="arsync-bench-local-")
    url = store_url or f"sqlite:///{Path(scratch.name) / 'local.db'}"  # ~100 MB at 100k: removed after
    engine = make_engine(url)
    upgrade(engine)
    register_companies(engine, [CompanyRow("local", "Local", "UTC", "replay")])
    source = PreparedSource(prepare(pages)) if write_only else ReplaySource(pages)
    # Fetching and generating the company left ~700k objects in reference cycles; collected
    # here, or the timed sync pays for them in its own garbage collections (~0.6 s of CPU).
    gc.collect()
    load = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = sync_company(
        engine,
        "local",
        CompanyPolicy(plan="pro", timezone="UTC"),
        source,
        owner=f"bench-{os.getpid()}",
        clock=lambda: datetime.now(UTC),
    )
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    engine.dispose()
    if scratch is not None:
        scratch.cleanup()
    if summary.status != "ok":
        raise RuntimeError(f"local bench sync failed: {summary.error}")
    return {
        "store": url.split(":", 1)[0],
        "timed": "write" if write_only else "decode+write",
        "invoices": summary.invoices,
        "customers": summary.customers,
        "payments": summary.payments,
        "credits": summary.credits,
        "seconds": round(seconds, 2),
        # this process's CPU: on a shared 2-core machine far steadier than the wall time
        "cpu_seconds": round(cpu_seconds, 2),
        "invoices_per_second": round(summary.invoices / seconds),
        "load_average": round(load, 2),
    }
