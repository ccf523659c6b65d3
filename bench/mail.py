"""10,000 reminder emails to a local SMTP server (aiosmtpd): plan, then dispatch.

Target (SPEC section 8): under 30 s to reach the server. The server runs in a process of its
own, as a local mail server does: in a thread of the measured process it took the GIL from
the dispatcher for every message it received.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from bench.feed import MemorySource, customers
from bench.workdirs import scratch_dir
from mailer.dispatch import dispatch
from mailer.smtp import SmtpTransport
from portal_rules.records import InvoiceRecord
from store.companies import CompanyRow, register_companies
from store.db import make_engine, upgrade
from store.tables import Outbox
from sync.config import parse_config
from sync.mail import stale_reminders, window_for
from sync.orchestrator import sync_company
from sync.reminders import plan_reminders
from sync.settings import company_policy

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York


class Counting:
    """Accepts every message and counts them (no parsing: measure arsync, not the server)."""

    def __init__(self, count: Synchronized) -> None:
        self.count = count

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.count.get_lock():
            self.count.value += 1
        return "250 2.0.0 Ok"


def serve(port: int, count: Synchronized, ready: Event, stop: Event) -> None:
    """The SMTP server's process: accept and count until `stop` is set."""
    controller = Controller(Counting(count), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


@contextmanager
def smtp_server(port: int) -> Iterator[Synchronized]:
    """A counting SMTP server on `port` in a process of its own; yields its message count."""
    context = multiprocessing.get_context("spawn")
    count, ready, stop = context.Value("q", 0), context.Event(), context.Event()
    process = context.Process(target=serve, args=(port, count, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the bench's SMTP server did not start")
        yield count
    finally:
        stop.set()
        process.join(30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(n: int = 10_000, store_url: str | None = None) -> dict:
    workdir = scratch_dir("arsync-bench-mail-")
    url = store_url or f"sqlite:///{workdir / 'bench.db'}"
    config = parse_config(
        {
            "store": {"url": url},
            "companies": [
                {
                    "id": "bench",
                    "name": "Bench Co",
                    "timezone": "America/New_York",
                    "portal_url": "https://portal.example",
                    "connection": {"kind": "memory"},
                }
            ],
        }
    )
    company = config.company("bench")
    engine = make_engine(url)
    upgrade(engine)
    register_companies(engine, [CompanyRow("bench", "Bench Co", "America/New_York", "memory")])
    due = NOW.date() - timedelta(days=7)
    records = [
        InvoiceRecord(
            str(i),
            str(i),
            f"INV-{i}",
            date(2026, 10, 1),
            due,
            "USD",
            Decimal("100.00"),
            Decimal("42.50"),
            True,
        )
        for i in range(1, n + 1)
    ]
    everyone = [c.__class__(c.ref, c.display_name, True, c.emails) for c in customers(n)]
    sync_company(
        engine,
        "bench",
        company_policy(company),
        MemorySource(everyone, records),
        owner="bench",
        clock=lambda: NOW,
    )
    started = time.perf_counter()
    report = plan_reminders(engine, config, company, now=NOW)
    planned = time.perf_counter() - started
    port = free_port()
    with smtp_server(port) as received:
        transport = SmtpTransport("127.0.0.1", port, "none", concurrency=8, messages_per_connection=1000)
        started = time.perf_counter()
        while True:
            result = dispatch(  # as the daemon does: reminders no longer due are taken back first
                engine,
                transport,
                now=NOW,
                window_for=window_for(config),
                worker_id="bench",
                batch_size=2000,
                withdraw=stale_reminders(config),
            )
            if not result.sent and not result.retrying:
                break
        sent_seconds = time.perf_counter() - started
        count = received.value
    with engine.connect() as connection:
        sent_rows = connection.scalar(select(func.count()).where(Outbox.status == "sent"))
    engine.dispose()
    return {
        "emails": len(report.planned),
        "received": count,
        "outbox_sent": sent_rows,
        "plan_seconds": round(planned, 2),
        "dispatch_seconds": round(sent_seconds, 2),
        "per_second": round(count / sent_seconds, 1) if sent_seconds else None,
    }
