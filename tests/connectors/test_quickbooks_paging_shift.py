"""A deletion during a full QuickBooks pull shifts its paging; no live record is lost for it.

A full listing pages by STARTPOSITION over `ORDERBY Id`. An invoice deleted in the books
after its page was read moves every later invoice one position back, so the invoice at the
next page boundary is on neither page. It did not change, so no CDC reports it either. The
pull keeps each page boundary in its cursor; the first incremental pull after it learns the
deletion from CDC and reads what lies between each boundary's two ids again.

Each test runs real syncs (`sync_company`) against the simulator over HTTP and reads the
store's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from connectors.quickbooks import shift
from connectors.quickbooks.cursor import Deleted, Edge
from connectors.registry import create_connector
from connectors.simulators import mutations
from portal_rules.records import Page
from portal_rules.types import CompanyPolicy, Plan
from store.tables import Customer, Invoice
from sync.orchestrator import SyncSummary, sync_company
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    COMPANY,
    Pulled,
    QboWorld,
    api_requests,
    dated,
    make_company,
    open_world,
    pull,
    qbo_engine_fixture,
)

POLICY = CompanyPolicy(plan=Plan.PRO, timezone="UTC")
PAGE = 100


@pytest.fixture
def qbo(qbo_engine: Engine) -> Iterator[QboWorld]:
    with open_world(make_company(seed=23, customers=60, live_invoices=2500), qbo_engine) as world:
        yield world


def sync(world: QboWorld, *, on_page=None, full: bool = False, **options) -> SyncSummary:
    connector = create_connector(world.settings(page_size=PAGE, **options), world.credentials())
    summary = sync_company(
        world.engine, COMPANY, POLICY, connector, full=full, owner="t", clock=world.clock.now, on_page=on_page
    )
    assert summary.status == "ok", summary.error
    return summary


def stored(world: QboWorld) -> dict[str, Decimal]:
    """Live invoices in the store: ref -> balance."""
    with world.engine.connect() as connection:
        live = (Invoice.company_id == COMPANY) & Invoice.deleted.is_(False)
        rows = connection.execute(select(Invoice.ref, Invoice.balance).where(live))
        return {ref: balance for ref, balance in rows}


def in_the_books(world: QboWorld) -> dict[str, Decimal]:
    return {ref: invoice.balance for ref, invoice in dated(world.company).items()}


class DeleteAfterFirstInvoicesPage:
    """`on_page`: once the first invoices page is committed, delete invoices of that page."""

    def __init__(self, world: QboWorld, count: int = 1, pause: float = 1) -> None:
        self.world, self.count, self.pause, self.deleted = world, count, pause, []

    def __call__(self, _: SyncSummary, page: Page) -> None:
        if self.deleted or page.entity != "invoices" or not page.records:
            return
        for record in page.records[: self.count]:
            mutations.delete(self.world.company, record.ref, self.world.clock.advance(seconds=self.pause))
            self.deleted.append(record.ref)
        self.world.clock.advance(seconds=1)


@pytest.mark.parametrize(
    ("concurrent", "offload_pages"),
    [(1, 0), (10, 0), (10, 1)],
    ids=["one page at a time", "pages fetched ahead", "pages read in the page decoder"],
)
def test_an_invoice_skipped_by_a_shift_is_read_by_the_next_incremental_sync(qbo, concurrent, offload_pages):
    deleting = DeleteAfterFirstInvoicesPage(qbo)
    sync(qbo, full=True, on_page=deleting, concurrent=concurrent, offload_pages=offload_pages)
    assert deleting.deleted
    qbo.clock.advance(minutes=5)
    qbo.sim.counters.reset()
    sync(qbo, concurrent=concurrent)
    assert stored(qbo) == in_the_books(qbo)
    requests = api_requests(qbo.sim)
    assert requests["cdc"] == 1 and requests.get("batch", 0) <= 1  # the boundaries, re-read in one request


def test_many_deletions_during_the_pull_lose_nothing(qbo):
    deleting = DeleteAfterFirstInvoicesPage(qbo, count=40)
    sync(qbo, full=True, on_page=deleting, concurrent=1)
    qbo.clock.advance(minutes=5)
    sync(qbo, concurrent=1)
    assert len(deleting.deleted) == 40
    assert stored(qbo) == in_the_books(qbo)


def test_without_a_deletion_the_incremental_sync_costs_one_cdc_request(qbo):
    sync(qbo, full=True, concurrent=1)
    qbo.clock.advance(minutes=5)
    qbo.sim.counters.reset()
    sync(qbo, concurrent=1)
    assert api_requests(qbo.sim) == {"cdc": 1}
    assert stored(qbo) == in_the_books(qbo)


def test_a_next_sync_past_cdcs_30_days_reads_every_record_again(qbo):
    """Too late for CDC, nothing can say whether a deletion pushed a record off the full
    pull's pages: the next sync reads every record (LastUpdatedTime would not find the
    skipped one: it did not change). It is a full sync for the store too: no CDC reports
    deletions that old, so the ones the pull no longer finds are marked there, or the deleted
    invoice stayed in the portal until someone ran `sync --full`."""
    deleting = DeleteAfterFirstInvoicesPage(qbo)
    sync(qbo, full=True, on_page=deleting, concurrent=1)
    assert set(in_the_books(qbo)) - set(stored(qbo))  # a live invoice was pushed off
    qbo.clock.advance(days=31)
    deleted_later = next(iter(in_the_books(qbo)))
    mutations.delete(qbo.company, deleted_later, qbo.clock.advance(seconds=1))
    assert sync(qbo, concurrent=1).full
    assert stored(qbo) == in_the_books(qbo)
    assert deleted_later not in stored(qbo) and not set(deleting.deleted) & set(stored(qbo))


def test_the_boundaries_go_through_a_second_of_more_changes_than_cdc_answers(qbo_engine):
    """The first CDC after the full pull is full within one second (QuickBooks answers at most
    1000 objects; 5 here): that second is read by query, then CDC goes on, and the
    boundaries with it."""
    with open_world(
        make_company(seed=23, customers=60, live_invoices=300), qbo_engine, cdc_max_objects=5
    ) as world:
        deleting = DeleteAfterFirstInvoicesPage(world, count=12, pause=0)
        sync(world, full=True, on_page=deleting, concurrent=1, cdc_max_objects=5)
        world.clock.advance(minutes=10)
        sync(world, concurrent=1, cdc_max_objects=5)
        assert set(in_the_books(world)) <= set(stored(world))


def test_a_repair_killed_midway_resumes_and_a_window_fallen_short_is_asked_wider(qbo):
    """The incremental pull is stopped right after its CDC page (its cursor says what to
    repair); then more invoices are deleted, so the boundary moved further than CDC counted."""
    connector = lambda: create_connector(qbo.settings(page_size=PAGE, concurrent=1), qbo.credentials())  # noqa: E731
    deleting, full = DeleteAfterFirstInvoicesPage(qbo), Pulled()
    for page in connector().pages(None):
        full.add(page)
        deleting(None, page)
    missed = set(dated(qbo.company)) - set(full.invoices)
    assert missed  # the pull missed an invoice: the repair is to read it
    qbo.clock.advance(minutes=5)
    killed = pull(connector(), full.cursor, stop_after=1)
    assert killed.cursor["mode"] == "repair" and killed.cursor["deleted"] == [
        ["invoices", 1, deleting.deleted[0]]
    ]
    for ref in sorted(full.invoices, key=int)[1:4]:  # three more, before every boundary
        mutations.delete(qbo.company, ref, qbo.clock.advance(seconds=1))
    qbo.sim.counters.reset()
    resumed = pull(connector(), killed.cursor)
    assert missed <= set(resumed.invoices)
    assert resumed.cursor == {"v": 3, "mode": "done", "since": killed.cursor["since"]}
    assert api_requests(qbo.sim) == {"batch": 2}  # the windows, then those that fell short, wider


def test_too_many_deletions_for_windows_mean_a_full_listing(qbo):
    """A repair whose windows would exceed 1000 rows re-reads the listing instead."""
    since = "2025-06-02T08:30:00-07:00"
    cursor = {
        "v": 3, "mode": "repair", "since": since,
        "edges": [["invoices", 1001, "1117", "1118", 0]], "deleted": [["invoices", 5000, "1"]],
    }  # fmt: skip
    qbo.sim.counters.reset()
    result = pull(create_connector(qbo.settings(concurrent=1), qbo.credentials()), cursor)
    assert set(result.invoices) == set(dated(qbo.company)) and result.pages[-1].full_sync_complete
    assert "batch" not in api_requests(qbo.sim)


@pytest.mark.parametrize(
    "edges",
    [[["invoices", 1, "5", "6", 0]], [["bills", 1001, "5", "6", 0]], [["invoices", 1001, 5, "6", 0]], "x"],
    ids=["start 1", "unknown entity", "numeric id", "not a list"],
)
def test_a_cursor_with_unreadable_edges_means_a_full_pull(qbo, edges):
    cursor = {"v": 3, "mode": "done", "since": "2025-06-02T08:30:00-07:00", "edges": edges}
    result = pull(create_connector(qbo.settings(concurrent=1), qbo.credentials()), cursor)
    assert result.pages[-1].full_sync_complete and set(result.invoices) == set(dated(qbo.company))


# -- the window arithmetic, as a table ------------------------------------------------------

EDGE = Edge("invoices", start=11, before="6", after="9")  # one deletion: positions 9 to 12


@pytest.mark.parametrize(
    ("ids", "skipped"),
    [
        (["5", "6", "7", "9"], ["7"]),
        (["6", "7", "8", "9"], ["7", "8"]),
        (["6", "9"], []),  # a short answer: the listing ends there
        (["7", "8", "9", "10"], None),  # the last Id before is not reached: ask wider
        (["4", "5", "6", "7"], None),  # nor the first Id after
    ],
    ids=["one skipped", "two skipped", "short answer", "fell short below", "fell short above"],
)
def test_what_lies_between_a_boundarys_two_ids(ids, skipped):
    assert shift.window(EDGE, 1) == (9, 4)
    found = shift.between([{"Id": ref} for ref in ids], EDGE, 1)
    assert (None if found is None else [row["Id"] for row in found]) == skipped


def test_deletions_add_up_over_cdc_windows_and_keep_the_lowest_id():
    rows = {"invoices": [{"Id": "12", "status": "Deleted"}, {"Id": "3", "status": "Deleted"}, {"Id": "4"}]}
    known = (Deleted("invoices", 2, "5"),)
    assert shift.deletions(rows, known) == (Deleted("invoices", 4, "3"),)
    assert shift.deletions({"invoices": [{"Id": "4"}]}) == ()
    later = Edge("invoices", 2001, "20", "21")
    assert shift.at_risk([EDGE, later], (Deleted("invoices", 1, "10"),)) == (later,)
    assert shift.at_risk([EDGE, later], (Deleted("payments", 1, "1"),)) == ()


@pytest.mark.parametrize("per_entity", [False, True], ids=["cap-per-response", "cap-per-entity"])
def test_a_full_cdc_answer_skips_no_entitys_changes_however_the_cap_is_counted(qbo_engine, per_entity):
    """Intuit documents at most 1,000 objects per CDC response (5 here). Were the cap counted
    per entity instead, an answer of 5 invoice changes and 3 later customer renames would be
    full for invoices only: going on from the renames' time skipped the invoices changed in
    between, for good. The pull goes on from the oldest newest change of the entities cut."""
    with open_world(
        make_company(seed=23, customers=20, live_invoices=40),
        qbo_engine,
        cdc_max_objects=5,
        cdc_cap_per_entity=per_entity,
    ) as world:
        sync(world, full=True, concurrent=1, cdc_max_objects=5)
        start = world.clock.advance(minutes=10)
        live = [i for i in world.company.invoices.values() if i.status == "open" and i.balance > 1][:12]
        for n, invoice in enumerate(live):  # one a second
            mutations.pay(world.company, invoice.id, invoice.balance, start + timedelta(seconds=n))
        customers = list(world.company.customers.values())[:3]
        for n, customer in enumerate(customers):  # later than every invoice change
            mutations.rename_customer(
                world.company, customer.id, f"Renamed {n}", start + timedelta(seconds=60 + n)
            )
        world.company.revision += 1
        world.clock.advance(minutes=10)
        sync(world, concurrent=1, cdc_max_objects=5)
        balances = stored(world)
        assert {i.id: balances[i.id] for i in live} == {i.id: 0 for i in live}
        with world.engine.connect() as connection:
            names = dict(connection.execute(select(Customer.ref, Customer.display_name)).all())
        assert [names[c.id] for c in customers] == ["Renamed 0", "Renamed 1", "Renamed 2"]


class EditOneReadOfTheSecond:
    """`on_page`: once the first page of a "second" listing is committed, one record it read
    is changed again, leaving that second: every later record of it moves up a position."""

    def __init__(self, world: QboWorld) -> None:
        self.world, self.edited = world, None

    def __call__(self, _: SyncSummary, page: Page) -> None:
        cursor = page.cursor
        if self.edited or page.entity != "invoices" or cursor.get("mode") != "second" or cursor["start"] <= 1:
            return
        self.edited = page.records[0].ref
        mutations.mark_sent(self.world.company, self.edited, self.world.clock.advance(seconds=5))
        self.world.company.revision += 1


@pytest.mark.parametrize("page_size", [40, 20], ids=["within-the-overlap", "beyond-it"])
def test_a_second_read_by_query_skips_no_record_when_one_it_read_leaves_it(qbo_engine, page_size):
    """More changes in one second than a CDC answer holds (5 here) are read by query, page by
    position within that second. One record read on its first page changed again: it left the
    second, and the record at the next page's position was on neither page, its change lost
    for good. Each page now asks a few rows of the one before again (2 of 40) and finds the
    last it read there; when it is not there (1 of 20 asked again), the second is read again."""
    with open_world(
        make_company(seed=23, customers=20, live_invoices=200), qbo_engine, cdc_max_objects=5
    ) as world:
        sync(world, full=True, concurrent=1, cdc_max_objects=5)
        second = world.clock.advance(minutes=10).replace(microsecond=0)
        bulk = [i for i in world.company.invoices.values() if i.status == "open" and i.balance > 1][:100]
        for invoice in bulk:  # a bulk payment run: 100 invoices paid in one second
            mutations.pay(world.company, invoice.id, invoice.balance, second)
        world.company.revision += 1
        world.clock.advance(minutes=10)
        editing = EditOneReadOfTheSecond(world)
        connector = create_connector(
            world.settings(page_size=page_size, concurrent=1, cdc_max_objects=5), world.credentials()
        )
        summary = sync_company(
            world.engine, COMPANY, POLICY, connector, owner="t", clock=world.clock.now, on_page=editing
        )
        assert summary.status == "ok" and editing.edited is not None, summary.error
        balances = stored(world)
        assert {i.id: balances[i.id] for i in bulk} == {i.id: 0 for i in bulk}
