"""A signed webhook after a change in the books: a running `arsync run` worker syncs, the view shows it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

from connectors.simulators import mutations
from store.fleet_tables import SyncSchedule
from sync.http.webhook_events import signature
from tests.http.conftest import QBO_VERIFIER, Served
from tests.http.test_webhooks import legacy

INVOICE = "107"  # customer 3's; no other test of this package reads its balance


def visible_balance(served: Served) -> Decimal | None:
    value = served.scalar(
        "SELECT balance FROM portal_invoices WHERE company_id = 'qbo' AND invoice_ref = :ref", ref=INVOICE
    )
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_webhook_makes_a_running_worker_sync_and_the_change_shows_within_10_seconds(served: Served):
    # Nothing is due for a day: only the webhook's request can make the worker sync.
    later = datetime.now(UTC) + timedelta(days=1)
    engine = served.engine()
    with engine.begin() as connection:
        connection.execute(update(SyncSchedule).values(next_due_at=later, requested_at=None))
    engine.dispose()
    log = served.config.with_name("run.log")
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sync", "--config", str(served.config), "run"],
            env=dict(os.environ),
            stderr=out,
            stdout=subprocess.DEVNULL,
        )
    try:
        assert wait_for(lambda: served.scalar("SELECT COUNT(*) FROM workers") >= 1, 30), log.read_text()[
            -2000:
        ]
        runs_before = served.scalar("SELECT COUNT(*) FROM sync_runs WHERE company_id = 'qbo'")
        realm = served.qbo.realms[0]
        mutations.pay(served.qbo.company(realm), INVOICE, Decimal("4.00"), datetime.now(UTC))
        assert visible_balance(served) == Decimal("10.00")
        body = legacy(realm).replace(b'"101"', f'"{INVOICE}"'.encode())
        began = time.monotonic()
        with served.client() as client:
            answer = client.post(
                "/webhooks/quickbooks",
                content=body,
                headers={"intuit-signature": signature(QBO_VERIFIER, body)},
            )
        assert answer.status_code == 200
        assert wait_for(lambda: visible_balance(served) == Decimal("6.00"), 10), log.read_text()[-2000:]
        assert time.monotonic() - began < 10
        assert served.scalar("SELECT COUNT(*) FROM sync_runs WHERE company_id = 'qbo'") == runs_before + 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0, log.read_text()[-2000:]
