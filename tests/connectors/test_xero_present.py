"""Xero `confirm_present`: records a full pull missed are asked for by id, in batches, before
anything is marked deleted. Through xero-python against the simulator."""

from __future__ import annotations

from connectors.base import ChecksCursor, ConfirmsPresence
from connectors.simulators import mutations
from tests.connectors.xero_fixtures import (  # noqa: F401 - fixtures
    clock_fixture,
    sample_fixture,
    store_fixture,
    volume_fixture,
    world_fixture,
)


def sales_invoices(company) -> list[str]:
    """Sales invoice ids in the order a full pull pages them (by id)."""
    return sorted(i.id for i in company.invoices.values() if i.type == "ACCREC")


def test_a_deletion_mid_pull_moves_no_live_invoice_off_the_pages_and_confirm_tells_them_apart(world, volume):
    connector = world.connector(volume.id, concurrent=1)  # page by page: the deletion lands between pages
    assert isinstance(connector, ConfirmsPresence)
    order = sales_invoices(volume)
    deleted, boundary = order[10], order[1000]  # on invoice page 1; the first of page 2
    seen: dict[str, bool] = {}
    for page in connector.pages(None):
        first_page = page.entity == "invoices" and not seen
        seen.update((i.ref, i.deleted) for i in page.of("invoices"))
        if first_page:
            # Deleted now: Xero keeps it, DELETED, in its place in id order; nothing moves.
            mutations.delete(volume, deleted, world.now())
    assert seen[deleted] is False  # read before it was deleted: the next pass reads the deletion
    assert set(order) == set(seen)

    world.sim.counters.reset()
    assert connector.confirm_present("invoices", [boundary, deleted]) == {boundary}
    assert world.sim.counters.requests["invoices"] == 1
    assert connector.presence_calls == 1  # counted for the sync's API calls


def test_every_entity_in_batches_of_ids_per_request(world, volume):
    connector = world.connector(volume.id, ids_per_request=40)
    live = [ref for ref in sales_invoices(volume) if volume.invoices[ref].status != "deleted"][:100]
    deleted = [ref for ref in sales_invoices(volume) if volume.invoices[ref].status == "deleted"][:5]
    assert deleted  # Xero keeps them, as DELETED: not present
    unknown = ["00000000-0000-0000-0000-000000000000", "not-a-guid"]
    world.sim.counters.reset()
    assert connector.confirm_present("invoices", live + deleted + unknown) == set(live)
    assert world.sim.counters.requests["invoices"] == 3  # 106 GUIDs by 40; "not-a-guid" never asked

    contacts = [c.id for c in volume.customers.values()][:10]
    assert connector.confirm_present("customers", contacts) == set(contacts)  # archived ones too

    payments = [p.id for p in volume.payments.values() if p.type == "ACCRECPAYMENT"][:50]
    credits = [c.id for c in volume.credits.values() if c.type == "ACCRECCREDIT"][:5]
    assert connector.confirm_present("payments", payments) == set(payments)
    mutations.delete_payment(volume, payments[0], world.now())
    assert connector.confirm_present("payments", payments) == set(payments[1:])
    assert connector.confirm_present("credits", [c.upper() for c in credits]) == {c.upper() for c in credits}
    assert connector.confirm_present("credits", []) == set()


def test_the_connector_tells_before_a_run_whether_it_can_go_on_from_a_cursor(world, volume):
    """`ChecksCursor`: the orchestrator makes a run from an unusable cursor a full one."""
    connector = world.connector(volume.id)
    assert isinstance(connector, ChecksCursor)
    *_, last = connector.pages(None)
    assert connector.cursor_problem(last.cursor) is None
    assert "version-1" in connector.cursor_problem({**last.cursor, "v": 1})
    assert connector.cursor_problem({**last.cursor, "v": 4}) == "not a version-3 Xero cursor"
