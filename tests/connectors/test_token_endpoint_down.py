"""A token endpoint that stays down is retried as one client's refresh, not once per thread.

A full pull asks several pages at once (QuickBooks: the batch and three first pages; Xero: two
listings' first pages), each in its own thread. When the access token is due and the token
endpoint answers 500 every time, each thread ran the whole retry policy on its own: 24
(QuickBooks) or 12 (Xero) token requests for a policy of 6. The threads share one refresh:
its tries are the policy's, and once it gives up no thread sends another.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from connectors.base import ConnectorError
from connectors.retry import MAX_ATTEMPTS
from connectors.simulators.quickbooks import TOKEN_PATH
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    QboWorld,
    make_company,
    open_world,
    qbo_engine_fixture,
)
from tests.connectors.xero_fixtures import (  # noqa: F401 - fixtures
    XeroWorld,
    clock_fixture,
    sample_fixture,
    store_fixture,
    volume_fixture,
    world_fixture,
)


@pytest.fixture
def qbo(qbo_engine: Engine) -> Iterator[QboWorld]:
    books = make_company(seed=11, customers=12, live_invoices=120, ledger=True)
    with open_world(books, qbo_engine) as world:
        yield world


def test_quickbooks_pages_fetched_ahead_share_one_failing_refresh(qbo):
    qbo.store_tokens(expires_in=-60)
    qbo.sim.faults.add(TOKEN_PATH, "500", count=100)
    with pytest.raises(ConnectorError, match="token endpoint"):
        list(qbo.connector(page_size=50).pages(None))
    assert qbo.sim.counters.requests["token"] == MAX_ATTEMPTS
    assert qbo.connection_row()["status"] == "ok"  # a down endpoint is not a lost connection


def test_xero_listings_fetched_ahead_share_one_failing_refresh(world: XeroWorld, sample):
    world.connect(sample.id, expires_in=60)  # due for refresh (5 minutes ahead)
    world.sim.faults.add("/connect/token", "500", count=100)
    with pytest.raises(ConnectorError, match="token endpoint"):
        list(world.connector(sample.id).pages(None))
    assert world.sim.counters.requests["token"] == MAX_ATTEMPTS
    assert world.connection_row(sample.id)["status"] == "ok"


def test_quickbooks_pages_waiting_for_a_refresh_go_on_with_its_token(qbo):
    qbo.store_tokens(expires_in=-60)
    qbo.sim.faults.add(TOKEN_PATH, "503", count=2)
    pages = list(qbo.connector(page_size=50).pages(None))
    assert qbo.sim.counters.requests["token"] == 3 and qbo.sim.tokens.refreshes == 1
    assert len({i.ref for page in pages for i in page.of("invoices")}) == 120
    assert sum(page.api_calls for page in pages) == qbo.sim.counters.total()
