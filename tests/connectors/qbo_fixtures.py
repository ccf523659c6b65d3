"""Fixtures for the QuickBooks connector tests: the simulator on a controllable clock, a
migrated store holding the encrypted tokens (the real `DbCredentials`), and connectors built
through the registry the way `sync` builds them. Test modules import what they use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select

from connectors.base import Connector, Tokens
from connectors.registry import ConnectorSettings, create_connector
from connectors.simulators.generator import generate_company
from connectors.simulators.model import SimCompany
from connectors.simulators.quickbooks import QuickBooksSimulator
from portal_rules.records import CreditRecord, CustomerRecord, InvoiceRecord, Page, PaymentRecord, Quarantined
from store.companies import CompanyRow, register_companies
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.db import make_engine, upgrade
from store.tables import CompanyConnection

NOW = datetime(2025, 6, 2, 15, 30, tzinfo=UTC)  # generated histories end the day before
TODAY = NOW.date()
LIVE_INVOICES = 2500
SECRET_KEY = "quickbooks connector tests"
COMPANY = "acme"
T = TypeVar("T")


def fast_sleep(seconds: float) -> None:
    """Retry backoff in tests: real, but never more than 10 ms."""
    time.sleep(min(seconds, 0.01))


QUICK = {"retry_base_wait": 0.001, "sleep": fast_sleep}  # options for tests not about waiting


class SimClock:
    """The simulator's and the connector's "now" (wall time stands still unless advanced)."""

    def __init__(self, start: datetime = NOW) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class VirtualTime:
    """A monotonic clock that only moves when someone sleeps (pacing tests cost no time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def make_company(
    seed: int = 11, customers: int = 120, live_invoices: int = LIVE_INVOICES, *, ledger: bool = True
) -> SimCompany:
    """A generated company with exactly `live_invoices` invoices a query returns (+ deleted ones);
    `ledger=False`: no payments nor credit memos (each is then one empty page of a full pull)."""
    company = generate_company("quickbooks", seed=seed, customers=customers, invoices=live_invoices + 200,
                               today=TODAY, ledger=ledger)  # fmt: skip
    live = [i for i in company.invoices.values() if i.status != "deleted"][:live_invoices]
    deleted = [i for i in company.invoices.values() if i.status == "deleted"][:20]
    company.invoices = {i.id: i for i in sorted(live + deleted, key=lambda i: int(i.id))}
    return company


@dataclass
class Pulled:
    """What a run of `pages()` produced, by ref (later pages win, as upserts would)."""

    pages: list[Page] = field(default_factory=list)
    customers: dict[str, CustomerRecord] = field(default_factory=dict)
    invoices: dict[str, InvoiceRecord] = field(default_factory=dict)
    payments: dict[str, PaymentRecord] = field(default_factory=dict)
    credits: dict[str, CreditRecord] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def cursor(self) -> dict[str, Any]:
        return self.pages[-1].cursor

    @property
    def api_calls(self) -> int:
        return sum(page.api_calls for page in self.pages)

    def add(self, page: Page) -> None:
        self.pages.append(page)
        self.customers.update((c.ref, c) for c in page.of("customers"))
        self.invoices.update((i.ref, i) for i in page.of("invoices"))
        self.payments.update((p.ref, p) for p in page.of("payments"))
        self.credits.update((c.ref, c) for c in page.of("credits"))
        self.quarantined.extend(page.quarantined)


def pull(
    connector: Connector, cursor: dict | None = None, *, full: bool = False, stop_after: int = 0
) -> Pulled:
    """Drain `connector.pages()` (or only its first `stop_after` pages, like a killed run)."""
    result = Pulled()
    for page in connector.pages(cursor, full=full):
        result.add(page)
        if stop_after and len(result.pages) >= stop_after:
            break
    return result


@dataclass
class QboWorld:
    """One simulator, one store, one company; connectors made on demand."""

    sim: QuickBooksSimulator
    company: SimCompany
    clock: SimClock
    engine: Engine
    box: SecretBox = field(default_factory=lambda: SecretBox(SECRET_KEY))

    def credentials(self) -> DbCredentials:
        """A credentials store like one process's (its own lock owner id)."""
        return DbCredentials(self.engine, COMPANY, self.box, lock_wait=20)

    def store_tokens(self, *, expires_in: float = 3600) -> Tokens:
        """Save a pair freshly minted by the simulator, its access token valid `expires_in` more."""
        access, refresh = self.sim.tokens.issue()
        now = self.clock.now()
        tokens = Tokens(access, refresh, now + timedelta(seconds=expires_in), now + timedelta(days=100))
        self.credentials().save(tokens)
        return tokens

    def settings(self, **options: Any) -> ConnectorSettings:
        return ConnectorSettings(
            company_id=COMPANY,
            kind="quickbooks",
            realm_id=self.company.id,
            client_id=self.sim.tokens.client_id,
            client_secret=self.sim.tokens.client_secret,
            api_base_url=self.sim.api_url,
            token_url=self.sim.token_url,
            options={**QUICK, **options},
            clock=self.clock.now,
        )

    def connector(self, credentials: DbCredentials | None = None, **options: Any) -> Connector:
        return create_connector(self.settings(**options), credentials or self.credentials())

    def connection_row(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            return dict(connection.execute(select(CompanyConnection)).mappings().one())


@contextmanager
def open_world(company: SimCompany, engine: Engine, **sim_options: Any) -> Iterator[QboWorld]:
    """A started simulator serving `company`, its realm registered in the store with tokens."""
    clock = SimClock()
    register_companies(engine, [CompanyRow(COMPANY, "Acme", "America/Los_Angeles", "quickbooks")])
    with QuickBooksSimulator(company, now=clock.now, **sim_options) as sim:
        world = QboWorld(sim, company, clock, engine)
        world.store_tokens()
        yield world
        assert not sim.errors, sim.errors[0]  # a simulator crash is a failed test


@pytest.fixture(name="qbo_engine")
def qbo_engine_fixture(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(name="company")
def company_fixture() -> SimCompany:
    return make_company()


@pytest.fixture(name="world")
def world_fixture(company: SimCompany, qbo_engine: Engine) -> Iterator[QboWorld]:
    with open_world(company, qbo_engine) as world:
        yield world


def run_in_threads(work: Callable[[], T], count: int) -> list[T]:
    """Run `work` in `count` threads released at once (like processes); re-raise any failure."""
    barrier, results, errors = threading.Barrier(count), [], []

    def run() -> None:
        barrier.wait()
        try:
            results.append(work())
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(results) == count, "a thread did not finish"
    return results


def api_requests(sim: QuickBooksSimulator) -> dict[str, int]:
    """Requests per API endpoint (token refreshes left out: tests advance hours of sim time)."""
    return {name: n for name, n in sim.counters.requests.items() if name != "token"}


def dated(company: SimCompany) -> dict[str, Any]:
    """Live invoices of the model by id (what a full pull must return)."""
    return {i.id: i for i in company.invoices.values() if i.status != "deleted"}


def first(items: Any, predicate: Any) -> Any:
    return next(item for item in items if predicate(item))


__all__ = [
    "COMPANY",
    "LIVE_INVOICES",
    "NOW",
    "QUICK",
    "SECRET_KEY",
    "TODAY",
    "Pulled",
    "QboWorld",
    "SimClock",
    "VirtualTime",
    "api_requests",
    "company_fixture",
    "dated",
    "fast_sleep",
    "first",
    "make_company",
    "open_world",
    "pull",
    "run_in_threads",
    "qbo_engine_fixture",
    "world_fixture",
]
