"""QuickBooks failures and limits: transient faults retried with the data complete, refusals
stop at once, and client-side pacing keeps the simulator's real limits unviolated."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from connectors.base import ConnectorError
from connectors.quickbooks.cursor import Done, stamp
from tests.connectors.answered import after_first_answer
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    NOW,
    QboWorld,
    VirtualTime,
    api_requests,
    make_company,
    open_world,
    pull,
    qbo_engine_fixture,
    run_in_threads,
)

CUSTOMERS, INVOICES = 30, 450


@pytest.fixture
def small(qbo_engine: Engine) -> Iterator[QboWorld]:
    books = make_company(
        seed=7, customers=CUSTOMERS, live_invoices=INVOICES, ledger=False
    )  # counts stay readable
    with open_world(books, qbo_engine) as world:
        yield world


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop", "lost", "malformed"])
def test_transient_faults_are_retried_and_the_data_is_complete(small, kind):
    small.sim.faults.add(f"/v3/company/{small.company.id}/batch", kind)
    small.sim.faults.add(f"/v3/company/{small.company.id}/query", kind)
    result = pull(small.connector(page_size=100))
    assert small.sim.faults.pending() == 0
    assert len(result.invoices) == INVOICES and len(result.customers) == CUSTOMERS
    assert result.pages[-1].full_sync_complete
    # the batch (the customers page and every COUNT(*)), the 5 invoice pages, and the first
    # pages of payments and credit memos (none in these books) asked beside the batch; the
    # batch and one of the queries (whichever the fault met first) retried
    requests = Counter(api_requests(small.sim))
    pages = Counter({"batch": 1, "query:Invoice": 5, "query:Payment": 1, "query:CreditMemo": 1})
    retried = requests - pages
    assert requests >= pages and retried["batch"] == 1 and retried.total() == 2
    assert requests.total() == result.api_calls == small.sim.counters.total() == 10


def test_cdc_faults_are_retried_too(small):
    cursor = pull(small.connector()).cursor
    small.clock.advance(hours=1)
    small.store_tokens()  # fresh tokens: this test counts CDC requests only
    small.sim.faults.add(f"/v3/company/{small.company.id}/cdc", "429")
    small.sim.faults.add(f"/v3/company/{small.company.id}/cdc", "malformed")
    small.sim.counters.reset()
    result = pull(small.connector(), cursor)
    assert api_requests(small.sim) == {"cdc": 3} and result.api_calls == 3
    assert result.cursor["mode"] == "done"


def test_a_validation_fault_stops_without_retrying(small):
    # Told CDC reaches 60 days back, the connector asks for 40: QBO refuses with a 400.
    cursor = Done(stamp(NOW - timedelta(days=40))).to_dict()
    with pytest.raises(ConnectorError, match=r"QuickBooks refused the request \[HTTP 400\]") as refused:
        pull(small.connector(cdc_max_days=60), cursor)
    assert "30 days" in str(refused.value)
    assert api_requests(small.sim) == {"cdc": 1}


@pytest.mark.parametrize("edges", [False, True])
def test_a_cdc_window_left_by_an_interrupted_run_and_resumed_after_30_days_is_read_by_queries(small, edges):
    """A run stopped between CDC windows (an outage, a kill) leaves a `cdc` cursor; resumed
    more than 30 days later, QuickBooks refuses that window (ValidationFault 2010) at every
    run. It is read as an older `done` cursor is: by LastUpdatedTime, or, with the page
    boundaries of a full listing still to check, by a full listing."""
    first = pull(small.connector(page_size=100))  # five invoice pages: four boundaries
    assert first.cursor["mode"] == "done" and first.cursor["edges"]
    window = {"v": first.cursor["v"], "mode": "cdc", "since": stamp(NOW - timedelta(days=31))}
    if edges:
        window["edges"] = first.cursor["edges"]
    small.sim.counters.reset()
    result = pull(small.connector(), window)
    assert result.cursor["mode"] == "done"
    requests = api_requests(small.sim)
    assert "cdc" not in requests, requests
    if edges:
        assert len(result.invoices) == INVOICES  # everything read again
    else:
        assert set(requests) <= {"query:Customer", "query:Invoice", "query:Payment", "query:CreditMemo"}


@pytest.mark.parametrize("edges", [False, True])
def test_a_second_read_by_query_resumed_after_30_days_goes_on_by_queries(small, edges):
    """A run stopped inside a second read by query (more changes in one second than a CDC
    answer holds) leaves a `second` cursor, which goes on by CDC after that second. Resumed
    more than 30 days later, that CDC request was refused and the run failed; it goes on by
    LastUpdatedTime queries instead, and with a full listing's page boundaries still to
    check, the run is a full pull (`cursor_problem`), its deletions marked at its end."""
    first = pull(small.connector(page_size=100))
    assert first.cursor["edges"]
    since = stamp(NOW - timedelta(days=31))
    second = {"v": first.cursor["v"], "mode": "second", "entity": "customers", "start": 1, "since": since}
    if edges:
        second["edges"] = first.cursor["edges"]
    connector = small.connector()
    if edges:
        assert "a full pull reads every record again" in connector.cursor_problem(second)
        return
    assert connector.cursor_problem(second) is None
    small.sim.counters.reset()
    result = pull(connector, second)
    assert result.cursor["mode"] == "done"
    assert "cdc" not in api_requests(small.sim)
    assert result.pages[-1].deletions_unseen_since is not None  # the next sync reads everything


def test_giving_up_after_the_attempts_says_why(small):
    small.sim.faults.add(f"/v3/company/{small.company.id}/batch", "503", count=10)
    gave_up = r"gave up after 3 attempts: QuickBooks server error \[HTTP 503\]"
    with pytest.raises(ConnectorError, match=gave_up):
        pull(small.connector(retry_attempts=3))
    # the pull's first round: the batch, and the first pages asked beside it; nothing else
    assert api_requests(small.sim) == {
        "batch": 3,
        "query:Invoice": 1,
        "query:Payment": 1,
        "query:CreditMemo": 1,
    }


def test_a_page_that_fails_stops_the_pages_asked_ahead(small):
    """Its pull fails there: no page past it is asked, only those already in flight end."""
    small.sim.faults.add(f"/v3/company/{small.company.id}/query", "503", count=50)
    with pytest.raises(ConnectorError, match=r"QuickBooks server error \[HTTP 503\]"):
        pull(small.connector(page_size=50, concurrent=2, retry_attempts=1))
    asked = api_requests(small.sim)
    # at most the window's two of the 8 planned (one, when the first failed before the second went)
    assert asked.keys() == {"batch", "query:Invoice"} and asked["batch"] == 1
    assert 1 <= asked["query:Invoice"] <= 2


def test_an_early_page_failing_once_planned_stops_the_pages_asked_ahead(small):
    """The invoices' first page is asked beside the batch, before the plan has it. Once the
    plan has it, its failure fails the pull as any page's does: no page past it is asked.
    Held until then, it failed while the second page was still in flight, and the window's
    freed place went to a third."""
    small.sim.faults.add(f"/v3/company/{small.company.id}/query", "503", count=50)
    connector = small.connector(page_size=50, concurrent=2, retry_attempts=1)
    client = connector.client
    first_invoices, others = threading.Event(), threading.Event()
    asked: list[str] = []
    query = client.query

    def held(statement: str, *args, **kwargs):
        asked.append(statement)
        if "FROM Invoice" in statement:
            (first_invoices if "STARTPOSITION 1 " in statement else others).wait(timeout=30)
        return query(statement, *args, **kwargs)

    client.query = held
    pages = connector.pages(None)
    assert next(pages).entity == "customers"  # the plan has every page now; two are in flight
    first_invoices.set()
    after_first_answer(small.sim.counters, "query:Invoice")
    others.set()
    with pytest.raises(ConnectorError, match=r"QuickBooks server error \[HTTP 503\]"):
        list(pages)
    assert len([s for s in asked if "FROM Invoice" in s]) == 2, asked


def test_pacing_keeps_under_the_minute_limit(qbo_engine):
    time = VirtualTime()  # the simulator's minute window and the connector's pacer share it
    company = make_company(seed=7, customers=CUSTOMERS, live_invoices=INVOICES, ledger=False)
    with open_world(company, qbo_engine, per_minute=20, limit_clock=time.monotonic) as world:
        connector = world.connector(page_size=20, per_minute=20, monotonic=time.monotonic, sleep=time.sleep)
        result = pull(connector)
        # 30/20 and 450/20 pages (the first in the batch with the counts), and the first pages
        # of the empty payments and credit memos, asked beside the batch
        assert len(result.invoices) == INVOICES and result.api_calls == 2 + 23 + 2
        assert world.sim.counters.violations == {}
        assert time.slept >= 60  # 27 requests at 20 a minute: the pacer waited a window


def test_pacing_keeps_under_the_concurrency_cap(qbo_engine):
    company = make_company(seed=7, customers=CUSTOMERS, live_invoices=INVOICES)
    with open_world(company, qbo_engine, concurrency=2, latency=0.03) as world:
        connector = world.connector(page_size=100, concurrent=2)  # one client, four threads
        results = run_in_threads(lambda: pull(connector), 4)
        assert all(len(r.invoices) == INVOICES for r in results) and len(results) == 4
        assert world.sim.counters.violations == {}
        assert world.sim.gauge.peak[world.company.id] == 2  # the cap was reached, never passed
