"""The QuickBooks connector through the real python-quickbooks SDK against the simulator:
full pulls at the minimum request count, the normalized records, resuming, CDC incremental
pulls (split windows included), LastUpdatedTime pulls for old cursors, quarantine."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from connectors.quickbooks import ahead
from connectors.quickbooks.cursor import Done, stamp
from connectors.quickbooks.pull import listing_overlap
from connectors.registry import create_connector
from connectors.simulators import mutations
from connectors.simulators.quickbooks_render import email_separator
from portal_rules.types import CompanyPolicy
from store.tables import Adjustment, Invoice
from sync.orchestrator import sync_company
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    COMPANY,
    LIVE_INVOICES,
    NOW,
    api_requests,
    company_fixture,
    dated,
    first,
    make_company,
    open_world,
    pull,
    qbo_engine_fixture,
    world_fixture,
)

LA = ZoneInfo("America/Los_Angeles")
SIM_TZ_NOW = "2025-06-02T08:30:00-07:00"  # NOW as the simulator's (Los Angeles) responses say it


# -- full pulls ----------------------------------------------------------------------------


def test_full_pull_costs_the_page_limit_minimum(world):
    world.sim.counters.reset()
    result = pull(world.connector())
    payments, credits = ledger_sizes(world.company)  # about one payment per paid invoice
    assert 1000 < payments < 3000 and 0 < credits < 1000
    # 120 customers, 2500 invoices, then payments and credit memos: one batch (the customers
    # page and every COUNT(*)), then the other pages: ceil(n/1000) requests per entity in all
    sizes = {"Customer": 120, "Invoice": LIVE_INVOICES, "Payment": payments, "CreditMemo": credits}
    assert api_requests(world.sim) == expected_requests(sizes)
    assert result.api_calls == sum(-(-n // 1000) for n in sizes.values())
    assert [p.total for p in result.pages] == [120] + [LIVE_INVOICES] * 3 + [payments] * (
        payments // 1000 + 1
    ) + [credits]
    assert [(p.entity, len(p.of("customers")), len(p.of("invoices"))) for p in result.pages[:4]] == [
        ("customers", 120, 0), ("invoices", 0, 1000), ("invoices", 0, 1000), ("invoices", 0, 500),
    ]  # fmt: skip
    assert [p.entity for p in result.pages[4:]] == ["payments"] * (payments // 1000 + 1) + ["credits"]
    assert [p.full_sync_complete for p in result.pages] == [False] * (len(result.pages) - 1) + [True]
    assert set(result.invoices) == set(dated(world.company)) and len(result.invoices) == LIVE_INVOICES
    assert set(result.customers) == set(world.company.customers)
    assert (len(result.payments), len(result.credits)) == (payments, credits)
    # the server's time, and each page boundary (the last Id before it, the first after)
    assert result.cursor == {"v": 3, "mode": "done", "since": SIM_TZ_NOW, "edges": page_edges(world.company)}
    assert not result.quarantined


@pytest.mark.parametrize("concurrent", [1, 10], ids=["one-at-a-time", "pages-ahead"])
def test_a_multiple_of_1000_costs_the_same_either_way(qbo_engine, concurrent):
    # 1000 customers and 2000 invoices. One page at a time, the last page of each entity is
    # the empty one that says "no more" (floor(n/1000) + 1); fetching ahead, the counts say it.
    books = make_company(seed=5, customers=1000, live_invoices=2000, ledger=False)
    with open_world(books, qbo_engine) as world:
        world.sim.counters.reset()
        result = pull(world.connector(concurrent=concurrent))
        if concurrent == 1:  # none in these books: one empty page each for payments and credit memos
            ledger = {"query:Payment": 1, "query:CreditMemo": 1}
            assert api_requests(world.sim) == {"query:Customer": 2, "query:Invoice": 3, **ledger}
            assert [p for p in result.pages if p.entity == "invoices"][-1].of("invoices") == ()
        else:  # the batch holds the customers page and the counts; each later entity's first
            # page is asked beside it, so the empty ones cost that request, counted on their page
            ledger = {"query:Payment": 1, "query:CreditMemo": 1}
            assert api_requests(world.sim) == {"batch": 1, "query:Invoice": 2, **ledger}
            assert [(p.entity, len(p.records), p.api_calls) for p in result.pages] == [
                ("customers", 1000, 1), ("invoices", 1000, 1), ("invoices", 1000, 1),
                ("payments", 0, 1), ("credits", 0, 1),
            ]  # fmt: skip
        assert len(result.customers) == 1000 and len(result.invoices) == 2000
        assert result.pages[-1].full_sync_complete and result.cursor["mode"] == "done"


def test_pages_fetched_ahead_are_the_pages_read_one_at_a_time(world):
    """Same pages, same order, same cursors; only the requests overlap (within the cap)."""
    one = pull(world.connector(page_size=300, concurrent=1))
    world.sim.gauge.peak.clear()
    world.sim.latency = 0.05  # long enough for requests to overlap
    ahead = pull(world.connector(page_size=300, concurrent=4))
    assert 1 < world.sim.gauge.peak[world.company.id] <= 4
    payments, credits = ledger_sizes(world.company)
    sizes = [LIVE_INVOICES, payments, credits]  # (120 customers: one page)
    assert len(ahead.pages) == 1 + sum(max(1, -(-n // 300)) for n in sizes)

    def shape(result):
        return [
            (
                p.entity,
                p.of("customers"),
                p.of("invoices"),
                p.of("payments"),
                p.of("credits"),
                p.cursor,
                p.full_sync_complete,
            )
            for p in result.pages
        ]

    assert shape(ahead) == shape(one)
    # the same requests, but one: the empty last page read when n % 300 == 0, which the counts
    # (in the batch that also brings the customers page) make unnecessary
    assert ahead.api_calls == one.api_calls - sum(1 for n in sizes if n % 300 == 0)


def test_each_entitys_first_page_is_asked_beside_the_batch(qbo_engine):
    """First pages need no count: with one page per entity, the whole pull is the batch and
    three pages in flight together (one round of latency, where it took two), and its pages
    are those of a pull one page at a time."""
    books = make_company(seed=3, customers=40, live_invoices=300)
    with open_world(books, qbo_engine, latency=0.2) as world:
        one = pull(world.connector(concurrent=1))
        world.sim.counters.reset()
        world.sim.gauge.peak.clear()
        result = pull(world.connector(concurrent=10))
        assert api_requests(world.sim) == {
            "batch": 1,
            "query:Invoice": 1,
            "query:Payment": 1,
            "query:CreditMemo": 1,
        }
        assert world.sim.gauge.peak[world.company.id] == 4  # not 3: nothing waited for the counts
        assert [(p.entity, p.api_calls) for p in result.pages] == [
            ("customers", 1), ("invoices", 1), ("payments", 1), ("credits", 1),
        ]  # fmt: skip
        assert [(p.entity, p.records, p.cursor) for p in result.pages[:-1]] == [
            (p.entity, p.records, p.cursor) for p in one.pages[:-1]
        ]
        assert result.pages[-1].records == one.pages[-1].records and result.pages[-1].full_sync_complete


def test_a_pull_resumed_in_an_entity_asks_the_later_entities_first_pages_early(world):
    """Resumed at invoice page 2: the batch brings it (and the counts), payments' and credit
    memos' first pages go beside it; nothing is asked twice."""
    stopped = pull(world.connector(), stop_after=2)  # customers, invoices page 1
    world.sim.counters.reset()
    rest = pull(world.connector(concurrent=3), stopped.cursor)
    payments, credits = ledger_sizes(world.company)
    expected = {"batch": 1, "query:Invoice": 1, "query:Payment": -(-payments // 1000), "query:CreditMemo": 1}
    assert api_requests(world.sim) == expected
    assert len(stopped.invoices) + len(rest.invoices) == LIVE_INVOICES
    assert (len(rest.payments), len(rest.credits)) == (payments, credits)


@pytest.fixture
def gates(monkeypatch) -> list[ahead.Slots]:
    """The pulls' gates on answers read at once (`ahead.Slots`), as they are made."""
    made: list[ahead.Slots] = []

    class Noted(ahead.Slots):
        def __init__(self, size: int) -> None:
            super().__init__(size)
            made.append(self)

    monkeypatch.setattr(ahead, "Slots", Noted)
    return made


def test_pages_ahead_use_the_cap_but_few_answers_are_read_at_once(world, gates):
    """Latency: as many requests in flight as the realm allows; memory: at most READING
    answers received and read at once (the others wait in their sockets). The latency outlasts
    the asking of a round even on a loaded machine (at 0.1 s a busy CI once saw only four
    requests overlap)."""
    world.sim.latency = 0.3
    result = pull(world.connector(page_size=200, concurrent=10))
    assert ahead.READING < world.sim.gauge.peak[world.company.id] <= 10 == ahead.PAGES_AHEAD
    assert len(gates) == 1 and 1 <= gates[0].peak <= ahead.READING < 10 and gates[0].held == 0
    assert len(result.invoices) == LIVE_INVOICES


def test_a_pull_holding_a_page_asks_ahead_up_to_the_window_and_a_few_held_pages(world):
    """The next request starts as soon as one is answered, not when the pull takes its page
    (with a slow API, that would wait for the store on every page); answered pages waiting
    for the pull stay few: `window` in flight and `PAGES_HELD` more, at most."""
    connector = world.connector(page_size=100, concurrent=4)
    world.sim.counters.reset()
    pages = connector.pages(None, full=True)
    assert next(pages).entity == "customers"  # the batch's page; the pull holds here
    # the batch, then the window and the held pages, and beside them the first pages of
    # payments and credit memos, asked with the batch (invoices' is among the window's)
    expected = 1 + 4 + ahead.PAGES_HELD + 2

    def asked() -> int:
        return sum(api_requests(world.sim).values())

    deadline = time.monotonic() + 10
    while (asked() < expected or world.sim.gauge.inflight(world.company.id)) and time.monotonic() < deadline:
        time.sleep(0.01)  # the fetching threads' requests, answered while the pull holds
    assert asked() == expected  # not 4 (the window alone), and no more: the held pages are bounded
    assert api_requests(world.sim)["query:Payment"] == api_requests(world.sim)["query:CreditMemo"] == 1
    assert sum(1 for _ in pages) > expected  # the rest of the pull goes on as before


def test_a_request_leaves_the_window_once_its_body_is_in_not_once_it_is_read(world, monkeypatch):
    """Reading a body (~15 ms in the page decoder) is not the API's time: the next request
    goes while it is read, so with a slow API each round is asked a read earlier."""
    release = threading.Event()
    reader = ahead.Ahead._reader

    def held_reader(self, entity):
        read = reader(self, entity)

        def held(body: bytes):
            release.wait(10)  # every page read waits here until the test lets it go
            return read(body)

        return held

    monkeypatch.setattr(ahead.Ahead, "_reader", held_reader)
    connector = world.connector(page_size=100, concurrent=2)
    world.sim.counters.reset()
    pages = connector.pages(None, full=True)
    try:
        assert next(pages).entity == "customers"  # the batch's page, read in this thread

        def asked() -> int:
            return sum(api_requests(world.sim).values())

        deadline = time.monotonic() + 5
        while asked() < 1 + 2 + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert asked() >= 1 + 2 + 1  # the batch, the window's two (being read), and one more
    finally:
        release.set()
    rest = list(pages)
    assert sum(len(p.of("invoices")) for p in rest) == LIVE_INVOICES and rest[-1].full_sync_complete


def test_a_slot_that_fails_to_close_gives_back_its_bodys_place(world, gates):
    """A shared pacer's store gone between receiving a body and reading it (PostgreSQL
    restarted mid-sync): the request fails, and the body's place among the few read at
    once is given back. Kept, four such failures stalled every later request of the pull,
    and the sync never ended (the CI's PostgreSQL restart test caught it)."""

    class StoreGone(Exception):
        pass

    class Pacer:
        remaining_hint = None

        def __init__(self) -> None:
            self.slots = 0

        @contextmanager
        def slot(self):
            self.slots += 1
            yield
            if self.slots > 1:  # the batch's slot closes; every later one meets the outage
                raise StoreGone("the pacing row's store went away")

    settings = replace(world.settings(page_size=100, concurrent=10), pacing=lambda *limits: Pacer())
    connector = create_connector(settings, world.credentials())
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            pull(connector)
        except BaseException as error:  # noqa: BLE001 - the test reads it
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the pull hung"
    assert len(outcome) == 1 and "the pacing row's store went away" in str(outcome[0])  # the pull failed
    assert len(gates) == 1 and gates[0].held == 0  # every place given back


def test_records_match_the_ledger(world):
    result = pull(world.connector())
    model = world.company
    inactive = {c.id for c in model.customers.values() if not c.active}
    assert inactive and {r.ref for r in result.customers.values() if not r.active} == inactive
    two = [c for c in model.customers.values() if len(c.emails) == 2]
    assert two
    for customer in two:  # the raw field, separators and all: the store splits it
        assert result.customers[customer.id].emails == (email_separator(customer.id).join(customer.emails),)
    assert all(result.customers[c.id].display_name == c.name for c in model.customers.values())
    live = dated(model)
    voided = {i.id for i in live.values() if i.status == "voided"}
    assert voided and {r.ref for r in result.invoices.values() if r.voided} == voided
    for ref, record in result.invoices.items():
        invoice = live[ref]
        assert isinstance(record.total, Decimal) and isinstance(record.balance, Decimal)
        assert (record.total, record.balance) == (invoice.total, invoice.balance)
        assert record.source_sent == (invoice.email_sent or invoice.printed)
        assert (record.customer_ref, record.issue_date, record.due_date) == (
            invoice.customer_id, invoice.issue_date, invoice.due_date,
        )  # fmt: skip
        assert record.updated_at == invoice.updated_at


def test_resuming_a_full_pull_yields_the_rest_and_nothing_twice(world):
    killed = pull(world.connector(), stop_after=2)  # customers + first invoice page stored
    assert killed.cursor["mode"] == "full" and killed.cursor["start"] == 1001
    world.clock.advance(minutes=20)
    world.sim.counters.reset()
    resumed = pull(world.connector(), killed.cursor)  # a new process, same store
    payments, credits = ledger_sizes(world.company)
    remaining = {"Invoice": LIVE_INVOICES - 1000, "Payment": payments, "CreditMemo": credits}
    assert api_requests(world.sim) == expected_requests(remaining)  # the batch brings invoice page 2
    assert not resumed.customers and not set(killed.invoices) & set(resumed.invoices)
    assert set(killed.invoices) | set(resumed.invoices) == set(dated(world.company))
    assert resumed.pages[-1].full_sync_complete
    # when the pull began; every page boundary, the one the killed run read up to included
    assert resumed.cursor == {"v": 3, "mode": "done", "since": SIM_TZ_NOW, "edges": page_edges(world.company)}


def test_a_cursor_stored_in_the_earlier_format_still_resumes(world):
    """Cursors committed before `seen` had that name carry it as "began": a stored one
    resumes where it stood, and the pull's start time it holds is kept."""
    stored = {"v": 3, "mode": "full", "entity": "invoices", "start": 1001, "began": SIM_TZ_NOW}
    world.clock.advance(minutes=20)
    resumed = pull(world.connector(), stored)
    assert not resumed.customers and resumed.pages[-1].full_sync_complete
    live = dated(world.company)
    assert set(resumed.invoices) <= set(live) and len(resumed.invoices) == len(live) - 1000  # the rest
    assert resumed.cursor["since"] == SIM_TZ_NOW  # not the later clock
    # such a cursor holds no last Id read: the boundary it stood at is not kept, the later ones are
    assert resumed.cursor["edges"] == page_edges(world.company)[1:]


def test_full_true_starts_over_whatever_the_cursor(world):
    done = pull(world.connector()).cursor
    world.sim.counters.reset()
    again = pull(world.connector(), done, full=True)
    payments, credits = ledger_sizes(world.company)
    sizes = {"Customer": 120, "Invoice": LIVE_INVOICES, "Payment": payments, "CreditMemo": credits}
    assert api_requests(world.sim) == expected_requests(sizes)
    assert again.pages[-1].full_sync_complete and len(again.invoices) == LIVE_INVOICES


def test_a_foreign_cursor_means_a_full_pull(world):
    result = pull(world.connector(), {"phase": "done", "position": 12})
    assert result.pages[-1].full_sync_complete and len(result.invoices) == LIVE_INVOICES


# -- incremental pulls ---------------------------------------------------------------------


def test_incremental_pull_returns_only_the_changes(world):
    model, clock = world.company, world.clock
    cursor = pull(world.connector()).cursor
    live = dated(model).values()
    unpaid = first(live, lambda i: i.status == "open" and i.balance == i.total and i.balance > 10)
    paid = first(live, lambda i: i.status == "open" and i.balance == 0 and i.total > 0)
    doomed = first(live, lambda i: i.status == "open" and i.id not in (unpaid.id, paid.id))
    voided = first(live, lambda i: i.status == "open" and i.id not in (unpaid.id, paid.id, doomed.id))
    unsent = first(live, lambda i: i.status == "open" and not i.email_sent and not i.printed)
    leaving = first(model.customers.values(), lambda c: c.active)
    gone = first(model.customers.values(), lambda c: c.active and c.id != leaving.id)
    clock.advance(hours=1)
    mutations.pay(model, unpaid.id, Decimal("10.00"), clock.advance(minutes=1))
    mutations.refund(model, paid.id, Decimal("5.00"), clock.advance(minutes=1))
    mutations.delete(model, doomed.id, clock.advance(minutes=1))
    mutations.void(model, voided.id, clock.advance(minutes=1))
    mutations.mark_sent(model, unsent.id, clock.advance(minutes=1))
    mutations.deactivate_customer(model, leaving.id, clock.advance(minutes=1))
    mutations.delete_customer(model, gone.id, clock.advance(minutes=1))
    clock.advance(hours=1)
    world.sim.counters.reset()
    result = pull(world.connector(), cursor)
    # the first CDC after a full pull reports a deletion: the page boundaries past it are read
    # again (one batch), in case the deletion came during the pull and pushed a record off them
    assert api_requests(world.sim) == {"cdc": 1, "batch": 1}
    assert set(result.invoices) == {unpaid.id, paid.id, doomed.id, voided.id, unsent.id}
    assert result.invoices[unpaid.id].balance == unpaid.total - Decimal("10.00")
    assert result.invoices[paid.id].balance == Decimal("5.00")
    assert result.invoices[doomed.id].deleted and not result.invoices[unpaid.id].deleted
    assert result.invoices[voided.id].voided and result.invoices[voided.id].total == 0
    assert result.invoices[unsent.id].source_sent
    assert set(result.customers) == {leaving.id, gone.id}
    assert not result.customers[leaving.id].active and not result.customers[leaving.id].deleted
    assert result.customers[gone.id].deleted
    new = [p for p in result.payments.values() if p.allocations and p.allocations[0].invoice_ref == unpaid.id]
    assert [(a.source_kind, a.amount) for p in new for a in p.allocations] == [("payment", Decimal("10.00"))]
    refunded = [p for p in result.payments.values() if paid.id in {a.invoice_ref for a in p.allocations}]
    assert refunded or any(p.deleted for p in result.payments.values())  # the payment gave 5.00 back
    assert result.cursor == {"v": 3, "mode": "done", "since": _la(clock.now())}
    world.sim.counters.reset()
    quiet = pull(world.connector(), result.cursor)  # nothing changed since
    assert api_requests(world.sim) == {"cdc": 1} and not quiet.invoices and not quiet.customers
    assert quiet.api_calls == 1 and quiet.cursor["mode"] == "done"


def test_a_cdc_window_with_more_than_1000_changes_is_split(world):
    model, clock = world.company, world.clock
    cursor = pull(world.connector()).cursor
    start = clock.advance(hours=1)
    changed = list(dated(model))[:1500]
    for n, invoice_id in enumerate(changed):  # two changes per second: the split lands mid-second
        mutations.mark_sent(model, invoice_id, start + timedelta(seconds=n // 2))
    clock.advance(hours=2)
    world.sim.counters.reset()
    result = pull(world.connector(), cursor)
    assert api_requests(world.sim) == {"cdc": 2}
    assert set(result.invoices) == set(changed)
    assert [len(p.of("invoices")) for p in result.pages] == [1000, 502]  # the boundary second re-read
    split = {"v": 3, "mode": "cdc", "since": _la(start + timedelta(seconds=499)), "edges": page_edges(model)}
    assert result.pages[0].cursor == split  # the full pull's page boundaries go on to the next window
    assert result.cursor["mode"] == "done"
    world.sim.counters.reset()
    resumed = pull(world.connector(), result.pages[0].cursor)  # killed after the first window
    assert api_requests(world.sim) == {"cdc": 1} and set(resumed.invoices) == set(changed[998:])


def test_more_than_1000_changes_in_one_second_are_read_by_query(world):
    model, clock = world.company, world.clock
    cursor = pull(world.connector()).cursor
    moment = clock.advance(hours=1)
    changed = list(dated(model))[:1200]
    for invoice_id in changed:  # a bulk update: one second, more than a CDC answer holds
        mutations.mark_sent(model, invoice_id, moment)
    later = first(dated(model), lambda i: i not in changed)
    mutations.mark_sent(model, later, moment + timedelta(seconds=5))
    clock.advance(hours=1)
    world.sim.counters.reset()
    result = pull(world.connector(), cursor)
    assert api_requests(world.sim) == {  # the second is read by query, entity by entity
        "cdc": 2, "query:Customer": 1, "query:Invoice": 2, "query:Payment": 1, "query:CreditMemo": 1,
    }  # fmt: skip
    assert set(result.invoices) == {*changed, later}
    assert result.cursor["mode"] == "done"


def test_an_old_cursor_pulls_by_last_updated_time(world):
    model, clock = world.company, world.clock
    since = NOW - timedelta(days=40)  # CDC only reaches 30 days back
    doomed = first(dated(model).values(), lambda i: i.updated_at >= since)
    mutations.delete(model, doomed.id, clock.advance(minutes=30))
    world.sim.counters.reset()
    pages, touched = [], None
    for page in world.connector(page_size=50).pages(Done(stamp(since)).to_dict()):
        pages.append(page)
        if touched is None and page.of("invoices"):  # a record already read changes meanwhile
            touched = page.of("invoices")[0].ref
            mutations.mark_sent(model, touched, clock.advance(minutes=1))
    origin = since - timedelta(seconds=300)  # the overlap
    expected = {i.id for i in dated(model).values() if i.updated_at >= origin}
    reads = [i.ref for page in pages for i in page.of("invoices")]
    assert set(api_requests(world.sim)) == {
        "query:Customer",
        "query:Invoice",
        "query:Payment",
        "query:CreditMemo",
    }
    # one request a page, each page new rows but for the few it reads again of the one before
    invoice_pages = [page for page in pages if page.entity == "invoices"]
    assert api_requests(world.sim)["query:Invoice"] == len(invoice_pages) > 5
    assert all(len(page.records) >= 50 - listing_overlap(50) for page in invoice_pages[:-1])
    assert set(reads) == expected and doomed.id not in expected  # deletions need CDC or a full sync
    # Paged by a LastUpdatedTime keyset: the record changed mid-pull moves to the end and is
    # read again, and shifts nothing (STARTPOSITION alone would skip a record here).
    assert sorted(reads) == sorted([*expected, touched])
    customers = {c.ref for page in pages for c in page.of("customers")}
    assert customers and customers == {c.id for c in model.customers.values() if c.updated_at >= origin}
    assert pages[-1].cursor["mode"] == "done" and not pages[-1].full_sync_complete


# -- quarantine ---------------------------------------------------------------------------


class _BadDate(date):
    """A date the simulator renders as an impossible day, as a corrupt ledger might."""

    def isoformat(self) -> str:
        return "2025-02-30"


def test_malformed_records_are_quarantined_and_the_pull_goes_on(world):
    model = world.company
    ids = list(dated(model))
    orphan, nan, bad_date = (model.invoices[i] for i in ids[:3])
    orphan.customer_id = ""
    nan.total = Decimal("Infinity")  # JSON `Infinity`: not an amount
    bad_date.due_date = _BadDate(2025, 3, 1)
    nameless = next(iter(model.customers.values()))
    nameless.name = ""
    world.sim.touch()
    result = pull(world.connector())
    assert {(q.entity, q.ref, q.reason) for q in result.quarantined} == {
        ("customers", nameless.id, "missing DisplayName"),
        ("invoices", bad_date.id, "bad DueDate '2025-02-30'"),
        ("invoices", nan.id, "non-numeric TotalAmt inf"),
        ("invoices", orphan.id, "missing CustomerRef"),
    }
    assert len(result.quarantined) == 4
    assert len(result.invoices) == LIVE_INVOICES - 3 and result.pages[-1].full_sync_complete


# -- through the orchestrator and the real store ---------------------------------------


def test_sync_into_the_store_and_detect_a_reopened_invoice(world):
    policy = CompanyPolicy(plan="pro", timezone="America/Los_Angeles")
    clock = world.clock
    summary = sync_company(world.engine, COMPANY, policy, world.connector(), owner="t", clock=clock.now)
    payments, credits = ledger_sizes(world.company)
    sizes = {"Customer": 120, "Invoice": LIVE_INVOICES, "Payment": payments, "CreditMemo": credits}
    calls = sum(expected_requests(sizes).values())
    assert (summary.status, summary.invoices, summary.api_calls) == ("ok", LIVE_INVOICES, calls)
    paid = first(dated(world.company).values(), lambda i: i.status == "open" and i.balance == 0 and i.total)
    clock.advance(hours=1)
    mutations.refund(world.company, paid.id, Decimal("7.50"), clock.advance(minutes=1))
    clock.advance(hours=1)
    summary = sync_company(world.engine, COMPANY, policy, world.connector(), owner="t", clock=clock.now)
    assert (summary.status, summary.invoices, summary.adjustments) == ("ok", 1, 1)
    assert summary.api_calls == 2  # one CDC request + one token refresh (two hours went by)
    with world.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Invoice)) == LIVE_INVOICES
        amount = connection.scalar(select(Adjustment.amount).where(Adjustment.invoice_ref == paid.id))
    assert amount == Decimal("7.50")


# -- helpers ------------------------------------------------------------------------------


def expected_requests(sizes: dict[str, int]) -> dict[str, int]:
    """A full pull fetching ahead: one batch (the first table's first page and every table's
    COUNT(*)), then the rest of the ceil(n/1000) pages of each table."""
    first = next(iter(sizes))
    requests = {"batch": 1}
    for table, n in sizes.items():
        pages = -(-n // 1000) - (1 if table == first and n else 0)
        if pages:
            requests[f"query:{table}"] = pages
    return requests


def page_edges(company) -> list[list]:
    """The page boundaries a full pull of `company` keeps: (entity, the later page's start, the
    last Id before, the first Id after, 0) at every 1000 records of each entity, in Id order."""
    live = {
        "invoices": dated(company),
        "payments": [p.id for p in company.payments.values() if p.status != "deleted"],
        "credits": [c.id for c in company.credits.values() if c.status != "deleted"],
    }
    edges = []
    for entity, ids in live.items():
        ordered = sorted(ids, key=int)
        edges += [[entity, n + 1, ordered[n - 1], ordered[n], 0] for n in range(1000, len(ordered), 1000)]
    return edges


def ledger_sizes(company) -> tuple[int, int]:
    """(payments, credit memos) a full pull returns: every one but the deleted."""
    payments = sum(1 for p in company.payments.values() if p.status != "deleted")
    return payments, sum(1 for c in company.credits.values() if c.status != "deleted")


def _la(moment: datetime) -> str:
    """A time as the simulator (a Los Angeles company) writes it."""
    return stamp(moment.astimezone(LA))
