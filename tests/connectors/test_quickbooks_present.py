"""QuickBooks `confirm_present`: records a full pull missed are asked for by id, in batches,
before anything is marked deleted. Through the real SDK against the simulator."""

from __future__ import annotations

from datetime import timedelta

from connectors.base import ChecksCursor, ConfirmsPresence
from connectors.quickbooks.present import MAX_STATEMENT_CHARS, statements
from connectors.simulators import mutations
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    LIVE_INVOICES,
    NOW,
    Pulled,
    api_requests,
    company_fixture,
    dated,
    qbo_engine_fixture,
    world_fixture,
)


def test_a_deletion_mid_pull_shifts_a_live_invoice_past_the_pull_and_confirm_finds_it(world):
    connector = world.connector(concurrent=1)  # page by page: the deletion lands between two pages
    assert isinstance(connector, ConfirmsPresence)
    ids = sorted(dated(world.company), key=int)
    deleted, moved = ids[10], ids[1000]  # on invoice page 1; the first of page 2
    result = Pulled()
    for page in connector.pages(None):
        result.add(page)
        if page.entity == "invoices" and len(page.records) == 1000 and len(result.invoices) == 1000:
            mutations.delete(world.company, deleted, NOW + timedelta(seconds=5))
    # Page 2 now starts one record later: `moved` slid onto page 1, already read.
    assert deleted in result.invoices and moved not in result.invoices
    assert len(result.invoices) == LIVE_INVOICES - 1
    missing = set(ids) - set(result.invoices)
    assert missing == {moved}

    world.sim.counters.reset()
    assert connector.confirm_present("invoices", [moved, deleted]) == {moved}
    assert api_requests(world.sim) == {"fields:Invoice": 1}
    assert connector.presence_calls == 1  # counted for the sync's API calls


def test_every_entity_in_batches_within_the_statement_limit(world):
    connector = world.connector()
    live = sorted(dated(world.company), key=int)
    gone = ["999999", "1000000"]
    world.sim.counters.reset()
    assert connector.confirm_present("invoices", live + gone) == set(live)
    batches = list(statements("Invoice", live + gone))
    assert len(batches) > 1 and all(len(statement) <= MAX_STATEMENT_CHARS for statement in batches)
    assert api_requests(world.sim) == {"fields:Invoice": len(batches)}

    customers = world.company.customers.values()
    inactive = [c.id for c in customers if not c.active and not c.deleted]
    assert inactive  # a plain query would not return them: they are present all the same
    assert connector.confirm_present("customers", inactive + ["424242"]) == set(inactive)

    payment = next(p for p in world.company.payments.values() if p.status != "deleted")
    credit = next(c for c in world.company.credits.values() if c.status not in ("deleted", "draft"))
    assert connector.confirm_present("payments", [payment.id]) == {payment.id}
    mutations.delete_payment(world.company, payment.id, NOW)
    assert connector.confirm_present("payments", [payment.id]) == set()
    assert connector.confirm_present("credits", [credit.id, "0"]) == {credit.id}
    assert connector.confirm_present("invoices", []) == set()


def test_quotes_in_a_ref_cannot_break_the_statement():
    [statement] = statements("Invoice", ["1", "2') OR ('1"])
    assert statement == "SELECT Id FROM Invoice WHERE Id IN ('1','2\\') OR (\\'1') MAXRESULTS 1000"


def test_the_connector_tells_before_a_run_whether_it_can_go_on_from_a_cursor(world):
    """`ChecksCursor`: the orchestrator makes a run from an unusable cursor a full one."""
    connector = world.connector()
    assert isinstance(connector, ChecksCursor)
    *_, last = connector.pages(None)
    assert connector.cursor_problem(last.cursor) is None
    assert "version-2" in connector.cursor_problem({**last.cursor, "v": 2})
    assert connector.cursor_problem({"phase": "done"}) == "not a version-3 QuickBooks cursor"
