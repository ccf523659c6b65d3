"""Fixtures for the Xero connector tests: the simulator on a virtual clock, a migrated SQLite
store holding the encrypted tokens (the real `DbCredentials`), and connectors built the way
`sync` builds them. Test modules import what they use from here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from connectors.base import Tokens
from connectors.registry import ConnectorSettings, create_connector
from connectors.simulators.generator import generate_company, sample_company
from connectors.simulators.model import SimCompany
from connectors.simulators.xero import XeroSimulator
from connectors.simulators.xero_limits import XeroLimits
from portal_rules.records import CreditRecord, CustomerRecord, InvoiceRecord, Page, PaymentRecord
from store.companies import CompanyRow, register_companies
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.db import make_engine, upgrade
from store.tables import CompanyConnection

TODAY = date(2025, 6, 1)  # generated histories end the day before
START = datetime(2025, 6, 2, 9, tzinfo=UTC)
ROOMY = XeroLimits(per_minute=10_000, per_day=100_000)  # for tests that are not about limits
SECRET_KEY = "xero connector tests"


class FakeClock:
    """Seconds since the epoch, moved only by `advance` (and by the connector's sleeps)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start.timestamp()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def volume_company() -> SimCompany:
    """A few thousand sales invoices (three pages of 1000) and some bills."""
    return generate_company("xero", seed=21, customers=60, invoices=2700, today=TODAY)


@dataclass
class XeroWorld:
    """A simulator, a store and the glue to connect companies of the one to the other."""

    sim: XeroSimulator
    clock: FakeClock
    engine: Engine
    box: SecretBox = field(default_factory=lambda: SecretBox(SECRET_KEY))

    def connect(self, company_id: str, *, expires_in: float = 1800) -> DbCredentials:
        """Register `company_id` and store a fresh token pair for it, as `auth connect` would."""
        register_companies(self.engine, [CompanyRow(company_id, company_id, "Europe/London", "xero")])
        pair = self.sim.tokens.issue()
        credentials = self.credentials(company_id)
        credentials.save(
            Tokens(pair.access_token, pair.refresh_token, self.now() + timedelta(seconds=expires_in))
        )
        return credentials

    def credentials(self, company_id: str) -> DbCredentials:
        return DbCredentials(self.engine, company_id, self.box, lock_wait=10)

    def now(self) -> datetime:
        return self.clock.datetime()

    def settings(self, tenant_id: str, company_id: str | None = None, **options) -> ConnectorSettings:
        knobs = {"sleep": self.clock.sleep, "monotonic": self.clock, "retry_base_wait": 0.01, **options}
        return ConnectorSettings(
            company_id=company_id or tenant_id,
            kind="xero",
            tenant_id=tenant_id,
            client_id=self.sim.tokens.client_id,
            client_secret=self.sim.tokens.client_secret,
            api_base_url=self.sim.accounting_url,
            token_url=self.sim.token_url,
            options=knobs,
            clock=self.now,
        )

    def connector(self, tenant_id: str, company_id: str | None = None, **options):
        """A connector through the registry, with credentials from the store."""
        settings = self.settings(tenant_id, company_id, **options)
        return create_connector(settings, self.credentials(settings.company_id))

    def connection_row(self, company_id: str) -> dict:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(CompanyConnection).where(CompanyConnection.company_id == company_id)
            )
            return dict(row.mappings().one())


@dataclass
class Pull:
    """Everything one `pages()` run yielded."""

    pages: list[Page]

    @property
    def customers(self) -> dict[str, CustomerRecord]:
        return {c.ref: c for page in self.pages for c in page.of("customers")}

    @property
    def invoices(self) -> dict[str, InvoiceRecord]:
        return {i.ref: i for page in self.pages for i in page.of("invoices")}

    @property
    def payments(self) -> dict[str, PaymentRecord]:
        return {p.ref: p for page in self.pages for p in page.of("payments")}

    @property
    def credits(self) -> dict[str, CreditRecord]:
        return {c.ref: c for page in self.pages for c in page.of("credits")}

    @property
    def quarantined(self) -> list:
        return [q for page in self.pages for q in page.quarantined]

    @property
    def cursor(self) -> dict:
        return self.pages[-1].cursor

    @property
    def api_calls(self) -> int:
        return sum(page.api_calls for page in self.pages)


def ledger_requests(company: SimCompany, page_size: int = 1000) -> dict[str, int]:
    """The requests a full pass makes for customer payments and credit notes (one at least)."""
    payments = sum(1 for p in company.payments.values() if p.type == "ACCRECPAYMENT")
    credits = sum(1 for c in company.credits.values() if c.type == "ACCRECCREDIT")
    return {"payments": max(1, -(-payments // page_size)), "creditnotes": max(1, -(-credits // page_size))}


def pull(connector, cursor: dict | None = None, *, full: bool = False, limit: int | None = None) -> Pull:
    """Run `pages()` to the end (or for `limit` pages, as a run killed after them would)."""
    pages: list[Page] = []
    for page in connector.pages(cursor, full=full):
        pages.append(page)
        if limit is not None and len(pages) == limit:
            break
    return Pull(pages)


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="store")
def store_fixture(tmp_path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'arsync.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(name="sample")
def sample_fixture() -> SimCompany:
    return sample_company("xero", today=TODAY)


@pytest.fixture(name="volume")
def volume_fixture() -> SimCompany:
    return volume_company()


@pytest.fixture(name="world")
def world_fixture(clock, store, sample, volume) -> Iterator[XeroWorld]:
    with XeroSimulator([sample, volume], clock=clock, limits=ROOMY) as sim:
        world = XeroWorld(sim, clock, store)
        world.connect(sample.id)
        world.connect(volume.id)
        yield world
