"""Customer health recomputation: 10,000 customers and 100,000 invoices, bar under 2 s.

The books are written straight into a fresh store (untimed): every customer in the portal,
ten visible invoices each, due over the last 400 days, a third of them open, the rest paid
by a payment allocated to them (about 67,000 payments and allocations).
The store is then analyzed, as it is soon after a real first pull. The timed part is
`store.health.recompute`: the window's tally in SQL, the scoring and the
replacement of the company's rows, in one transaction. On a shared machine the process's
CPU time is printed too (with SQLite the database work is in-process, so it counts there).
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert

from bench.workdirs import scratch_dir
from store import health
from store.db import make_engine, upgrade
from store.history.tables import ALLOCATIONS, PAYMENTS
from store.tables import Company, Customer, Invoice

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def write_books(engine, customers: int, invoices: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    today = NOW.date()
    with engine.begin() as connection:
        connection.execute(
            insert(Company.__table__).values(company_id="bench", name="Bench", timezone="UTC", kind="bench")
        )
        connection.execute(
            insert(Customer.__table__),
            [
                {"company_id": "bench", "ref": f"C{i}", "display_name": f"Customer {i}"}
                for i in range(customers)
            ],
        )
        rows = []
        for i in range(invoices):
            total = Decimal(rng.randint(1_000, 500_000)) / 100
            rows.append(
                {
                    "company_id": "bench",
                    "ref": f"I{i}",
                    "customer_ref": f"C{i % customers}",
                    "due_date": today - timedelta(days=rng.randint(-30, 400)),
                    "currency": "USD",
                    "total": total,
                    "balance": total if rng.random() < 0.33 else Decimal(0),
                    "source_sent": True,
                    "visible": True,
                }
            )
        connection.execute(insert(Invoice.__table__), rows)
        paid = [row for row in rows if row["balance"] == 0]
        connection.execute(
            insert(PAYMENTS),
            [
                {
                    "company_id": "bench",
                    "ref": f"P{row['ref']}",
                    "customer_ref": row["customer_ref"],
                    "currency": "USD",
                    "amount": row["total"],
                    "unapplied": Decimal(0),
                }
                for row in paid
            ],
        )
        connection.execute(
            insert(ALLOCATIONS),
            [
                {
                    "company_id": "bench",
                    "owner_kind": "payment",
                    "owner_ref": f"P{row['ref']}",
                    "line": 0,
                    "source_kind": "payment",
                    "source_ref": f"P{row['ref']}",
                    "invoice_ref": row["ref"],
                    "amount": row["total"],
                    "allocated_on": row["due_date"] + timedelta(days=rng.randint(-10, 60)),
                }
                for row in paid
            ],
        )


def run(customers: int = 10_000, invoices: int = 100_000, store_url: str | None = None) -> dict:
    url = store_url or f"sqlite:///{scratch_dir('arsync-bench-health-') / 'health.db'}"
    engine = make_engine(url)
    upgrade(engine)
    write_books(engine, customers, invoices)
    with engine.begin() as connection:
        # With planner statistics, as the sync's refresh (SQLite) or autovacuum (PostgreSQL)
        # leaves a store soon after its first pull: plans, and PostgreSQL's JIT, depend on them.
        connection.exec_driver_sql("ANALYZE")
    started, cpu = time.perf_counter(), time.process_time()
    scored = health.recompute(engine, "bench", NOW)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return {
        "store": url.split(":", 1)[0],
        "customers": scored,
        "invoices": invoices,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),  # this process only: SQLite's work, not PostgreSQL's
        "load_average": round(os.getloadavg()[0], 1),
        "bar_seconds": 2.0,
    }
