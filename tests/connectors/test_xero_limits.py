"""Xero limits and faults through the connector: pacing from the headers, 429 storms, the
daily limit (one company blocked, the others syncing), transient faults, retries owned by
our policy (urllib3's are off: the simulator sees exactly one request per attempt)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import urllib3
from sqlalchemy import select

from connectors.base import ConnectorError, DailyLimitReached
from connectors.simulators.xero import XeroSimulator
from connectors.simulators.xero_limits import XeroLimits
from portal_rules.types import CompanyPolicy, Plan
from store.tables import Invoice
from sync.orchestrator import sync_company
from tests.connectors.answered import after_first_answer
from tests.connectors.xero_fixtures import (  # noqa: F401 - fixtures
    START,
    XeroWorld,
    clock_fixture,
    ledger_requests,
    pull,
    sample_fixture,
    store_fixture,
    volume_fixture,
    world_fixture,
)

INVOICES = "/api.xro/2.0/Invoices"
POLICY = CompanyPolicy(plan=Plan.PRO, timezone="Europe/London")


def sales_ids(company) -> set[str]:
    return {i.id for i in company.invoices.values() if i.type == "ACCREC"}


def stored_ids(company) -> set[str]:
    """What the store keeps: it never inserts an invoice whose first sighting is a deletion."""
    return {i.id for i in company.invoices.values() if i.type == "ACCREC" and i.status != "deleted"}


@pytest.fixture
def limited(request, clock, store, sample, volume) -> Iterator[XeroWorld]:
    """A world whose simulator enforces `request.param` limits."""
    with XeroSimulator([sample, volume], clock=clock, limits=request.param) as sim:
        world = XeroWorld(sim, clock, store)
        world.connect(sample.id)
        world.connect(volume.id)
        yield world


def other_app_calls(world: XeroWorld, tenant_id: str, calls: int = 1) -> None:
    """Another app of the same organisation calls the API (same tenant, same limits)."""
    token = world.sim.tokens.issue().access_token
    http = urllib3.PoolManager(retries=False)
    for _ in range(calls):
        answer = http.request(
            "GET",
            f"{world.sim.accounting_url}/Contacts",
            headers={"Authorization": f"Bearer {token}", "xero-tenant-id": tenant_id},
        )
        assert answer.status == 200


def spend_minute_quota(world: XeroWorld, tenant_id: str, calls: int) -> None:
    other_app_calls(world, tenant_id, calls)
    world.sim.counters.reset()


@pytest.mark.parametrize("limited", [XeroLimits(per_minute=5)], indirect=True)
def test_remaining_count_headers_pace_the_pull(limited, volume):
    """Xero allows 5 a minute here; the connector (configured for 60) reads
    X-MinLimit-Remaining and waits instead of discovering the limit through a 429, whatever
    order concurrent answers come back in. (Not fewer than the 5 in flight: no client
    knows a count before its first answer, so a fresh window's first round is 5.)"""
    connector = limited.connector(volume.id)
    result = pull(connector)
    assert set(result.invoices) == sales_ids(volume)
    assert limited.sim.counters.violations == {}
    assert limited.sim.counters.requests == {"contacts": 1, "invoices": 3, **ledger_requests(volume)}
    assert limited.clock.slept and set(limited.clock.slept) == {60.0}
    requests = limited.sim.counters.total()
    assert connector.client.day_remaining == 5000 - requests  # X-DayLimit-Remaining, read back


@pytest.mark.parametrize("limited", [XeroLimits(per_minute=5)], indirect=True)
def test_the_pull_is_paced_whatever_order_its_requests_arrive_in(limited, volume):
    """Requests sent together reach Xero in any order: an answer's count may leave out one
    sent before it, still on its way, and one on its way when the minute is spent may be
    counted in the next minute. Neither draws a 429."""
    limited.sim.arrival_jitter = 0.03
    result = pull(limited.connector(volume.id))
    assert set(result.invoices) == sales_ids(volume)
    assert limited.sim.counters.violations == {}
    assert limited.sim.counters.requests == {"contacts": 1, "invoices": 3, **ledger_requests(volume)}


def test_limits_come_from_options(world, volume):
    result = pull(world.connector(volume.id, per_minute=2))  # the simulator would allow more
    assert set(result.invoices) == sales_ids(volume)
    requests = world.sim.counters.total()
    assert world.clock.slept == [60.0] * ((requests - 1) // 2)  # 2 requests a minute


@pytest.mark.parametrize("limited", [XeroLimits(per_minute=3)], indirect=True)
def test_a_minute_limit_429_is_waited_out(limited, volume):
    spend_minute_quota(limited, volume.id, 3)
    # page by page: fetching ahead, invoices' first page may meet the spent minute too
    result = pull(limited.connector(volume.id, concurrent=1))
    assert set(result.invoices) == sales_ids(volume)
    assert limited.sim.counters.violations == {"minute": 1}  # then paced: no second 429
    assert limited.clock.slept[0] == 60.0  # Retry-After, honoured
    assert result.api_calls == limited.sim.counters.total() == 5 + sum(ledger_requests(volume).values())


def test_a_planned_429_storm_costs_one_request_per_attempt(world, volume):
    world.sim.faults.add(INVOICES, "429", 5)
    result = pull(world.connector(volume.id))
    assert set(result.invoices) == sales_ids(volume)
    assert world.sim.counters.requests == {"contacts": 1, "invoices": 3 + 5, **ledger_requests(volume)}
    assert world.clock.slept == [1.0] * 5  # Retry-After: 1, no hidden urllib3 sleeps
    assert result.api_calls == world.sim.counters.total()


def test_a_concurrency_429_is_retried(clock, store, sample):
    """Another client holds the only slot: 429 `concurrent`, Retry-After honoured (the
    injected sleep caps it at 0.35 s of real time)."""
    with XeroSimulator([sample], clock=clock, limits=XeroLimits(concurrent=1), latency=0.3) as sim:
        world = XeroWorld(sim, clock, store)
        world.connect(sample.id)
        naps: list[float] = []

        def nap(seconds: float) -> None:
            naps.append(seconds)
            time.sleep(min(seconds, 0.35))

        # told the simulator's cap: with 5, pages asked ahead would meet it too (more 429s).
        # Made before the other call starts: a first connector imports the SDK, which alone
        # can outlast that call's 0.3 s (the test run by itself never met the cap).
        connector = world.connector(sample.id, sleep=nap, concurrent=1)
        other = threading.Thread(target=other_app_calls, args=(world, sample.id))
        other.start()
        time.sleep(0.1)  # its request is in flight
        result = pull(connector)
        other.join()
    assert set(result.invoices) == sales_ids(sample)
    assert sim.counters.violations == {"concurrent": 1} and naps == [1.0]


@pytest.mark.parametrize("limited", [XeroLimits(per_day=3)], indirect=True)
def test_the_daily_limit_stops_with_the_reset_time(limited, volume):
    pages = []
    with pytest.raises(DailyLimitReached) as raised:
        for page in limited.connector(volume.id).pages(None):
            pages.append(page)
    assert raised.value.retry_at == START + timedelta(days=1)  # now + Retry-After
    assert [p.entity for p in pages] == ["customers", "invoices", "invoices"]
    assert limited.sim.counters.requests == {"contacts": 1, "invoices": 3}  # no retry
    assert limited.sim.counters.violations == {"day": 1}


@pytest.mark.parametrize("limited", [XeroLimits(per_day=5)], indirect=True)  # the sample needs 5
def test_the_daily_limit_blocks_only_that_company(limited, volume, sample):
    def sync(company_id):
        connector = limited.connector(company_id)
        return sync_company(limited.engine, company_id, POLICY, connector, owner="t", clock=limited.now)

    blocked = sync(volume.id)
    assert blocked.status == "failed" and "resumes at" in blocked.error
    row = limited.connection_row(volume.id)
    assert row["status"] == "rate_limited" and row["blocked_until"] is not None

    other = sync(sample.id)  # another tenant, its own daily quota: unaffected
    assert other.status == "ok" and other.invoices == len(stored_ids(sample))
    assert sync(volume.id).status == "blocked"

    limited.clock.advance(86_400)
    limited.sim.counters.reset()
    resumed = sync(volume.id)
    assert resumed.status == "ok"
    # a day later: a refresh, then from where the quota ran out: the second payments page on
    ledger = ledger_requests(volume)
    assert limited.sim.counters.requests == {"token": 1, "payments": ledger["payments"] - 1, "creditnotes": 1}
    with limited.engine.connect() as connection:
        stored = set(connection.scalars(select(Invoice.ref).where(Invoice.company_id == volume.id)))
    assert stored == stored_ids(volume)


@pytest.mark.parametrize("kind", ["500", "503", "drop", "lost", "malformed"])
def test_transient_faults_are_retried(world, sample, kind):
    world.sim.faults.add(INVOICES, kind, 2)
    result = pull(world.connector(sample.id))
    assert set(result.invoices) == sales_ids(sample)
    assert world.sim.counters.requests["invoices"] == 1 + 2
    assert len(world.clock.slept) == 2  # two backoffs of our policy
    assert result.api_calls == world.sim.counters.total()


def test_persistent_server_errors_give_up(world, sample):
    world.sim.faults.add(INVOICES, "503", 50)
    with pytest.raises(ConnectorError, match="gave up after 6 attempts: Xero answered HTTP 503"):
        pull(world.connector(sample.id))
    assert world.sim.counters.requests["invoices"] == 6


@pytest.mark.parametrize(
    ("concurrent", "asked"),
    [(1, {"contacts": 1}), (5, {"contacts": 1, "invoices": 1})],
    ids=["page-by-page", "ahead"],
)
def test_other_client_errors_fail_at_once(world, sample, concurrent, asked):
    """Page by page nothing is asked before contacts' first page is answered; fetching ahead,
    invoices' first page went with it (the one request more of a pass stopped at its first
    page), and nothing further: payments' waits for contacts' end."""
    stranger = world.connector(
        "00000000-0000-0000-0000-000000000000", company_id=sample.id, concurrent=concurrent
    )
    with pytest.raises(ConnectorError, match="HTTP 403"):
        pull(stranger)
    assert world.sim.counters.requests == asked


def test_a_page_that_fails_stops_the_pages_asked_ahead(world, sample, monkeypatch):
    """Invoices' first page fails (after the client's one attempt) while contacts' is still
    out: the pull will fail there, so contacts' answer must not send payments' first page, as
    it did, a request spent for nothing (Xero's 60 a minute and 5,000 a day)."""
    from connectors.xero.client import XeroClient

    world.sim.faults.add(INVOICES, "503", 50)
    invoices_failed = threading.Event()
    contacts = XeroClient.contacts

    def held(self, *args, **kwargs):
        invoices_failed.wait(timeout=30)
        return contacts(self, *args, **kwargs)

    monkeypatch.setattr(XeroClient, "contacts", held)
    connector = world.connector(sample.id, concurrent=5, retry_attempts=1)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pull(connector)
        except BaseException as exc:  # noqa: BLE001 - kept for the assertion below
            errors.append(exc)

    puller = threading.Thread(target=run)
    puller.start()
    after_first_answer(world.sim.counters, "invoices")
    invoices_failed.set()
    puller.join(timeout=60)

    assert len(errors) == 1 and isinstance(errors[0], ConnectorError) and "503" in str(errors[0])
    assert world.sim.counters.requests == {"contacts": 1, "invoices": 1}
