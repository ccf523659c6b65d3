"""SPEC §10: health is computed at the end of each sync. A sync that commits a page and then
fails, or is stopped, has moved its cursor past that page, so no later sync reads it again:
the customers it wrote are rescored at its end, whatever its status. Xero: the invoices page
commits, then `/Payments` answers garbage until the sync gives up, or a stop comes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from portal_rules.balances import company_today
from store.crypto import SecretBox
from store.db import make_engine
from store.health import recompute
from sync.config import load_config
from sync.runner import sync_one
from tests.endtoend.conftest import World

ORSTED = "00000000-0000-4000-8000-000000000001"
INV_1 = "10000000-0000-4000-8000-000000000001"  # Ørsted's open invoice, past due


def _health(world: World) -> dict[str, tuple]:
    code, out, err = world.cli("customer", "health", "xero", "--json")
    assert code == 0, err
    rows = map(json.loads, out.splitlines())
    return {row["customer_ref"]: (row["score"], row["band"], row["reasons"]) for row in rows}


@pytest.mark.parametrize("ending", ["failed", "interrupted"])
def test_a_sync_that_ends_early_after_committing_a_page_rescores_its_customers(world: World, ending: str):
    world.sync("xero")
    invoice = world.xero_books.invoices[INV_1]
    # the books are dated in UTC, the company counts in New York: 2 days before 05:00 UTC
    late = (company_today(datetime.now(UTC), "America/New_York") - invoice.due_date).days
    assert f"1 open invoice {late} days past due" in _health(world)[ORSTED][2]

    invoice.balance = Decimal("0.00")  # paid in full
    invoice.updated_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    world.xero_books.revision += 1
    if ending == "failed":
        world.xero.faults.add("/api.xro/2.0/Payments", "malformed", 50)
    pages: list[str] = []
    [company] = [c for c in load_config(world.config).companies if c.id == "xero"]
    engine = make_engine(world.store_url)
    try:
        summary = sync_one(
            engine,
            SecretBox(None),
            company,
            owner="test",
            options={"retry_attempts": 2, "retry_base_wait": 0.001},
            on_page=lambda _summary, page: pages.append(page.entity),
            stop=lambda: ending == "interrupted" and "invoices" in pages,
        )
        assert (summary.status, pages[-1]) == (ending, "invoices"), summary
        assert "open invoice" not in _health(world)[ORSTED][2]  # rescored at the run's end

        world.xero.faults.clear()
        world.sync("xero")  # resumes past the committed invoices page: it does not read it again
        after = _health(world)
        recompute(engine, "xero", datetime.now(UTC))
        assert after == _health(world)
    finally:
        engine.dispose()
