"""The token endpoint fails once, then works: both connectors retry the refresh with backoff
and the sync completes (one shared policy, `connectors.bearer`); and a stop requested while a
connector waits to retry ends the sync promptly as interrupted, resumable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine

from connectors.base import Stopped
from connectors.bearer import classify_token_failure
from connectors.errors import Action
from connectors.oauth import TokenEndpointError
from connectors.registry import create_connector
from connectors.simulators.quickbooks import TOKEN_PATH
from connectors.waits import STEP
from portal_rules.types import CompanyPolicy, Plan
from sync.orchestrator import sync_company
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    COMPANY,
    QboWorld,
    make_company,
    open_world,
    qbo_engine_fixture,
)
from tests.connectors.xero_fixtures import (  # noqa: F401 - fixtures
    Pull,
    XeroWorld,
    clock_fixture,
    sample_fixture,
    store_fixture,
    volume_fixture,
    world_fixture,
)

CUSTOMERS, INVOICES = 12, 120


@pytest.fixture
def qbo(qbo_engine: Engine) -> Iterator[QboWorld]:
    books = make_company(seed=11, customers=CUSTOMERS, live_invoices=INVOICES, ledger=False)
    with open_world(books, qbo_engine) as world:
        yield world


class Sleeps:
    """Records the connector's waits (and takes none: the tests are about what is retried)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.parametrize("fault", ["500", "503", "drop"])
@pytest.mark.parametrize("when", ["due-before-the-first-request", "401-mid-run"])
def test_quickbooks_retries_a_failed_refresh_and_completes(qbo, fault, when):
    sleeps = Sleeps()
    if when == "due-before-the-first-request":
        qbo.store_tokens(expires_in=-60)
        qbo.sim.faults.add(TOKEN_PATH, fault)
    pages = qbo.connector(page_size=50, concurrent=1, sleep=sleeps).pages(None)
    first = next(pages)
    if when == "401-mid-run":
        qbo.sim.tokens.expire()  # the next request meets a 401, and the refresh meets the fault
        qbo.sim.faults.add(TOKEN_PATH, fault)
    rest = list(pages)
    assert qbo.sim.faults.pending() == 0
    assert qbo.sim.tokens.refreshes == 1 and qbo.sim.counters.requests["token"] == 2
    invoices = {i.ref for page in [first, *rest] for i in page.of("invoices")}
    assert len(invoices) == INVOICES and rest[-1].full_sync_complete
    assert sleeps.waits  # the failed refresh was waited out (backoff), not retried at once
    assert sum(p.api_calls for p in [first, *rest]) == qbo.sim.counters.total()
    assert qbo.connection_row()["status"] == "ok"


@pytest.mark.parametrize("fault", ["500", "503", "drop"])
@pytest.mark.parametrize("when", ["due-before-the-first-request", "401-mid-run"])
def test_xero_retries_a_failed_refresh_and_completes(world: XeroWorld, sample, fault, when):
    xero = world
    if when == "due-before-the-first-request":
        xero.connect(sample.id, expires_in=60)  # due for refresh (5 minutes ahead)
        xero.sim.faults.add("/connect/token", fault)
    pages = xero.connector(sample.id).pages(None)
    first = next(pages)
    if when == "401-mid-run":
        xero.sim.tokens.expire()  # the next request meets a 401, and the refresh meets the fault
        xero.sim.faults.add("/connect/token", fault)
    result = Pull([first, *pages])
    assert xero.sim.faults.pending() == 0
    assert xero.sim.tokens.refreshes == 1 and xero.sim.counters.requests["token"] == 2
    sales = {i.id for i in sample.invoices.values() if i.type == "ACCREC"}
    assert set(result.invoices) == sales and result.pages[-1].full_sync_complete
    assert xero.connection_row(sample.id)["status"] == "ok"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (None, Action.RETRY),
        (500, Action.RETRY),
        (503, Action.RETRY),
        (429, Action.RETRY),
        (200, Action.RETRY),
        (401, Action.FAIL),
        (400, Action.FAIL),
    ],
    ids=["unreachable", "500", "503", "429", "malformed-200", "invalid-client", "bad-request"],
)
def test_token_endpoint_failures_are_classified_once_for_both(status, action):
    classified = classify_token_failure(TokenEndpointError("token endpoint answered", status))
    assert classified.action is action and classified.reason.startswith("token endpoint failed")


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

    def after_the_first_page(summary) -> None:  # from now on QuickBooks throttles
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
