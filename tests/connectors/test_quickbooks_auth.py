"""QuickBooks tokens in a real store (SQLite and PostgreSQL): refresh on expiry, rotation
persisted before use, one refresh across processes, `invalid_grant` -> reconnect needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from connectors.base import ReconnectNeeded, Tokens
from connectors.simulators.base import InvalidGrant
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.tables import CompanyConnection
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    COMPANY,
    SECRET_KEY,
    QboWorld,
    make_company,
    open_world,
    pull,
    run_in_threads,
)

CUSTOMERS, INVOICES = 30, 450
# Pages of 20 make 25 pages, more than fetching ahead asks before the pull takes its third
# (10 in flight + 3 held): the tests' mid-run expiry always has requests left to meet it.
PAGE = 20


@pytest.fixture
def small(engine: Engine) -> Iterator[QboWorld]:
    """A small company on each store backend (the `engine` fixture runs SQLite and PostgreSQL)."""
    with open_world(make_company(seed=3, customers=CUSTOMERS, live_invoices=INVOICES), engine) as world:
        yield world


def stored_refresh_token(world: QboWorld) -> str:
    """The refresh token as stored: encrypted at rest, opened with the key."""
    with world.engine.connect() as connection:
        sealed = connection.scalar(select(CompanyConnection.refresh_token))
    assert sealed.startswith("enc:v1:")
    return SecretBox(SECRET_KEY).open(sealed)


@pytest.mark.parametrize("concurrent", [1, 10], ids=["one-at-a-time", "pages-ahead"])
def test_an_access_token_expiring_mid_run_is_refreshed_once_and_the_rotation_saved(small, concurrent):
    original = small.credentials().load()
    pages = []
    for page in small.connector(page_size=PAGE, concurrent=concurrent).pages(None):
        pages.append(page)
        if len(pages) == 2:
            small.sim.tokens.expire()  # QBO revoked or expired it before our clock said so
    assert small.sim.tokens.refreshes == 1
    assert sum(len(p.of("invoices")) for p in pages) == INVOICES and pages[-1].full_sync_complete
    if concurrent == 1:
        assert [p.api_calls for p in pages][2] == 3  # the 401, the refresh, the retry
    # Fetching ahead, several requests may meet the 401; one refreshes, the others reuse its token.
    assert sum(p.api_calls for p in pages) == small.sim.counters.total()
    current = stored_refresh_token(small)
    assert current != original.refresh_token
    with pytest.raises(InvalidGrant):
        small.sim.tokens.refresh(original.refresh_token)  # rotated away
    small.sim.tokens.refresh(current)  # the simulator's current one: accepted
    assert small.connection_row()["status"] == "ok"


@pytest.mark.parametrize("how", ["expired-at-the-server", "expired-in-the-store"])
def test_two_processes_needing_a_refresh_at_once_refresh_once(small, how):
    if how == "expired-in-the-store":
        small.store_tokens(expires_in=-60)  # both refresh before their first request
    else:
        small.sim.tokens.expire()  # both get a 401 on their first request
    connectors = iter([small.connector(small.credentials()) for _ in range(2)])  # own lock owners
    results = run_in_threads(lambda: pull(next(connectors)), 2)
    assert small.sim.tokens.refreshes == 1
    assert all(len(r.invoices) == INVOICES for r in results)
    assert small.sim.tokens.check(small.credentials().load().access_token)


@pytest.mark.parametrize("when", ["before-the-first-request", "mid-run"])
def test_a_refused_refresh_token_means_reconnect_needed(small, when):
    tokens = small.store_tokens(expires_in=-60 if when == "before-the-first-request" else 3600)
    small.sim.tokens.revoke(tokens.refresh_token)
    pages = small.connector(page_size=PAGE).pages(None)
    if when == "mid-run":
        next(pages)
        small.sim.tokens.expire()
    with pytest.raises(ReconnectNeeded):
        list(pages)
    row = small.connection_row()
    assert row["status"] == "reconnect_needed"
    assert row["status_detail"].endswith(f"run `arsync auth connect {COMPANY}`")  # the command whole
    assert small.sim.tokens.refreshes == 0


class StoreFailsOnce(DbCredentials):
    """The store is unreachable for the first `failures` saves (a failover, a dropped
    connection) and fine again after."""

    def __init__(self, *args: Any, failures: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    def save(self, tokens: Tokens) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("UPDATE connections", {}, Exception("server closed the connection"))
        super().save(tokens)


def test_a_store_failing_when_rotated_tokens_arrive_does_not_lose_the_connection(small):
    """The token endpoint rotated the refresh token (QuickBooks keeps no grace for the old one)
    and the store failed to take the new pair once: the pair is stored when the store is back,
    the pull completes, and the stored refresh token is the one the provider accepts."""
    original = small.store_tokens(expires_in=-60)
    credentials = StoreFailsOnce(small.engine, "acme", small.box, lock_wait=20)
    pulled = pull(small.connector(credentials, page_size=PAGE))
    assert credentials.failures == 0 and small.sim.tokens.refreshes == 1
    assert len(pulled.invoices) == INVOICES
    current = stored_refresh_token(small)
    assert current != original.refresh_token
    small.sim.tokens.refresh(current)  # accepted: the connection survived
    assert small.connection_row()["status"] == "ok"
