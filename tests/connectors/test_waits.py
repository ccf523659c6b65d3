"""A stop requested while a connector waits (backoff, Retry-After, pacing) ends the wait at
once with `Stopped`; the sync is `interrupted` and the next run resumes from its cursor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine

from connectors.base import Stopped
from connectors.registry import create_connector
from connectors.waits import STEP, interruptible
from portal_rules.types import CompanyPolicy, Plan
from sync.orchestrator import sync_company
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    COMPANY,
    QboWorld,
    make_company,
    open_world,
    qbo_engine_fixture,
)

CUSTOMERS, INVOICES = 12, 120


@pytest.fixture
def qbo(qbo_engine: Engine) -> Iterator[QboWorld]:
    books = make_company(seed=11, customers=CUSTOMERS, live_invoices=INVOICES, ledger=False)
    with open_world(books, qbo_engine) as world:
        yield world


def test_an_interruptible_wait_adds_up_and_ends_on_stop():
    slept: list[float] = []
    interruptible(slept.append, lambda: False)(1.2)
    assert slept == [0.5, 0.5, pytest.approx(0.2)]  # the whole wait, in steps
    assert interruptible(slept.append, None) == slept.append  # nothing to honour: the sleep itself
    stop = iter([False, False, True])
    slept.clear()
    with pytest.raises(Stopped):
        interruptible(slept.append, lambda: next(stop))(30.0)
    assert slept == [STEP, STEP]  # a 30-second wait ended after its second step


def test_a_stop_during_a_pacing_wait_ends_it_at_once(qbo):
    """One request a minute allowed: the second waits for the window, and SIGTERM arrives."""
    stopping: list[bool] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        stopping.append(True)

    settings = replace(
        qbo.settings(page_size=50, concurrent=1, per_minute=1, sleep=sleep), stop=lambda: bool(stopping)
    )
    pages = create_connector(settings, qbo.credentials()).pages(None)
    next(pages)
    with pytest.raises(Stopped):
        next(pages)
    assert len(waits) == 1 and qbo.sim.counters.total() == 1  # no second request


def test_a_stop_during_a_retry_wait_ends_the_wait_at_once(qbo):
    """SIGTERM arrives while the connector waits to retry a 429: the wait ends within one
    step (no further request), with `Stopped`."""
    stopping = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        stopping.append(True)  # the signal arrives during the first wait

    settings = replace(
        qbo.settings(page_size=50, concurrent=1, sleep=sleep, retry_base_wait=10.0),
        stop=lambda: bool(stopping),
    )
    connector = create_connector(settings, qbo.credentials())
    pages = connector.pages(None)
    next(pages)
    qbo.sim.faults.add(f"/v3/company/{qbo.company.id}/query", "429", count=5)
    with pytest.raises(Stopped, match="stopped by a signal"):
        next(pages)
    assert qbo.sim.faults.pending() == 4  # one 429 met, no request after the stop
    assert len(waits) == 1 and waits[0] <= STEP  # a wait of up to 20 s, cut after one step


def test_the_interrupted_run_resumes_from_its_committed_cursor(qbo):
    stopping: list[bool] = []
    settings = replace(
        qbo.settings(page_size=50, concurrent=1, sleep=lambda seconds: stopping.append(True)),
        stop=lambda: bool(stopping),
    )
    policy = CompanyPolicy(plan=Plan.PRO, timezone="UTC")

    def after_the_first_page(summary, page) -> None:  # from now on QuickBooks throttles
        if not qbo.sim.faults.pending():
            qbo.sim.faults.add(f"/v3/company/{qbo.company.id}/query", "429", count=5)

    connector = create_connector(settings, qbo.credentials())
    summary = sync_company(
        qbo.engine, COMPANY, policy, connector, owner="t", clock=qbo.clock.now, on_page=after_the_first_page
    )
    assert summary.status == "interrupted" and "next run resumes" in (summary.error or "")
    assert (summary.customers, summary.invoices) == (CUSTOMERS, 0)  # the customers page was committed
    qbo.sim.faults.clear()
    resumed = create_connector(replace(settings, stop=None), qbo.credentials())
    again = sync_company(qbo.engine, COMPANY, policy, resumed, owner="t", clock=qbo.clock.now)
    assert again.status == "ok", again.error
    assert (again.customers, again.invoices) == (0, INVOICES)  # resumed after the customers page
