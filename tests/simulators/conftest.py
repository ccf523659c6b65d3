"""Fixtures for the simulator tests: a generated QuickBooks company, a running simulator,
and a real python-quickbooks client (with a real intuit-oauth AuthClient) pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from intuitlib.client import AuthClient
from quickbooks import QuickBooks

from connectors.simulators.generator import generate_company
from connectors.simulators.model import SimCompany
from connectors.simulators.quickbooks import QuickBooksSimulator

# The simulator's "now"; generated histories end the day before.
NOW = datetime(2025, 6, 2, 15, 30, tzinfo=UTC)
TODAY = NOW.date()
LIVE_INVOICES = 2500


@pytest.fixture(autouse=True)
def _oauthlib_allows_loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-quickbooks sends through a requests-oauthlib OAuth2Session, which refuses
    # http:// unless this is set; the simulators serve plain HTTP on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def make_qbo_company(seed: int = 11, customers: int = 120, live_invoices: int = LIVE_INVOICES) -> SimCompany:
    """A generated company with exactly `live_invoices` invoices a query can return."""
    company = generate_company(
        "quickbooks", seed=seed, customers=customers, invoices=live_invoices + 200, today=TODAY
    )
    live = [i for i in company.invoices.values() if i.status != "deleted"][:live_invoices]
    deleted = [i for i in company.invoices.values() if i.status == "deleted"][:20]
    company.invoices = {i.id: i for i in sorted(live + deleted, key=lambda i: int(i.id))}
    return company


@pytest.fixture
def qb_company() -> SimCompany:
    return make_qbo_company()


@pytest.fixture
def qbo(qb_company: SimCompany) -> Iterator[QuickBooksSimulator]:
    with QuickBooksSimulator(qb_company, now=lambda: NOW) as sim:
        yield sim


def auth_client(sim: QuickBooksSimulator, **tokens: str) -> AuthClient:
    """intuit-oauth, unmodified: `environment` may be a discovery-document URL."""
    return AuthClient(
        client_id=sim.tokens.client_id,
        client_secret=sim.tokens.client_secret,
        redirect_uri="http://127.0.0.1/callback",
        environment=sim.discovery_url,
        **tokens,
    )


def sdk_client(sim: QuickBooksSimulator, realm: str | None = None) -> QuickBooks:
    """python-quickbooks with a freshly minted token pair; only its API URL is overridden."""
    access, refresh = sim.tokens.issue()
    auth = auth_client(sim, access_token=access, refresh_token=refresh)
    client = QuickBooks(
        auth_client=auth,
        refresh_token=refresh,
        company_id=realm or sim.realms[0],
        minorversion=75,
    )
    client.api_url_v3 = sim.api_url  # the one override: the SDK's base URL
    return client


@pytest.fixture
def qb(qbo: QuickBooksSimulator) -> QuickBooks:
    return sdk_client(qbo)


def raw_query(sim: QuickBooksSimulator, query: str, token: str | None = None) -> requests.Response:
    """POST a query like the SDK does, without the SDK (to read status, headers, raw body)."""
    token = token or sim.tokens.issue().access_token
    return requests.post(
        f"{sim.api_url}/company/{sim.realms[0]}/query",
        params={"minorversion": "75"},
        data=query,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/text",
        },
        timeout=10,
    )
