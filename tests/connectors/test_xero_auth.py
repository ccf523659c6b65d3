"""Xero OAuth through the connector: refresh mid-run, rotation persisted, one refresh across
connectors, the 30-minute grace for a lost refresh response, and invalid_grant."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from connectors.base import ReconnectNeeded
from store.tables import CompanyConnection
from tests.connectors.xero_fixtures import (  # noqa: F401 - fixtures
    clock_fixture,
    ledger_requests,
    pull,
    sample_fixture,
    store_fixture,
    volume_fixture,
    world_fixture,
)


def sales_ids(company) -> set[str]:
    return {i.id for i in company.invoices.values() if i.type == "ACCREC"}


def expire_at_the_server(world) -> None:
    world.sim.tokens.expire()  # Xero says 401 TokenExpired; the connector still trusts the expiry


def expire_by_time(world) -> None:
    world.clock.advance(28 * 60)  # within the 5 minutes the connector refreshes ahead


@pytest.mark.parametrize(
    ("expire", "unauthorized"),
    [(expire_at_the_server, 1), (expire_by_time, 0)],
    ids=["401-mid-run", "expiring-mid-run"],
)
def test_token_expiry_mid_run_refreshes_once_and_persists_the_rotation(world, volume, expire, unauthorized):
    before = world.credentials(volume.id).load()
    # Page by page, the one request in flight meets the 401; fetching ahead, every request in
    # flight would meet it and be retried (how many depends on timing, not on the refresh).
    pages = world.connector(volume.id, concurrent=1).pages(None)
    first = next(pages)
    expire(world)
    rest = list(pages)

    invoices = {i.ref for page in rest for i in page.of("invoices")}
    assert invoices == sales_ids(volume) and rest[-1].full_sync_complete
    assert world.sim.tokens.refreshes == 1
    ledger = ledger_requests(volume)
    assert world.sim.counters.requests == {"contacts": 1, "invoices": 3 + unauthorized, "token": 1, **ledger}
    assert first.api_calls + sum(p.api_calls for p in rest) == world.sim.counters.total()

    stored = world.credentials(volume.id).load()  # read back through the real store
    assert stored.refresh_token != before.refresh_token
    assert world.sim.tokens.check(stored.access_token)
    with world.engine.connect() as connection:
        sealed = connection.scalar(
            select(CompanyConnection.refresh_token).where(CompanyConnection.company_id == volume.id)
        )
    assert sealed.startswith("enc:v1:") and stored.refresh_token not in sealed
    assert world.sim.tokens.refresh(stored.refresh_token)  # the persisted token is the live one


def test_two_connectors_refresh_once(world, volume):
    world.connect(volume.id, expires_in=-60)  # both start with an expired access token
    connectors = [world.connector(volume.id), world.connector(volume.id)]
    start, results, errors = threading.Barrier(2), {}, []

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = pull(connectors[index])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert all(set(result.invoices) == sales_ids(volume) for result in results.values())
    assert world.sim.tokens.refreshes == 1 and world.sim.counters.requests["token"] == 1
    assert world.sim.tokens.check(world.credentials(volume.id).load().access_token)


def test_a_lost_refresh_response_is_recovered_within_the_grace(world, sample):
    """The token endpoint rotated the pair but the answer never arrived: the connector's
    retry sends the same (now used) refresh token and Xero's grace replays the new pair."""
    world.connect(sample.id, expires_in=60)  # due for refresh (5 minutes ahead)
    world.sim.faults.add("/connect/token", "lost")
    result = pull(world.connector(sample.id))
    assert set(result.invoices) == sales_ids(sample)
    assert world.sim.tokens.refreshes == 1 and world.sim.counters.requests["token"] == 2
    stored = world.credentials(sample.id).load()
    assert world.sim.tokens.check(stored.access_token)
    assert world.connection_row(sample.id)["status"] == "ok"


def test_refresh_token_used_out_of_band_still_works_within_the_grace(world, sample):
    """Another party (or a crashed run whose answer was lost) already used the stored
    refresh token: within 30 minutes Xero answers it again with the same new pair."""
    world.connect(sample.id, expires_in=60)
    used = world.credentials(sample.id).load()
    successor = world.sim.tokens.refresh(used.refresh_token)  # out of band: the answer is "lost"
    result = pull(world.connector(sample.id))
    assert set(result.invoices) == sales_ids(sample)
    stored = world.credentials(sample.id).load()
    assert (stored.access_token, stored.refresh_token) == tuple(successor)
    assert world.sim.tokens.refreshes == 1  # the replay is not a new rotation


def test_after_the_grace_a_used_refresh_token_needs_a_reconnect(world, sample):
    world.connect(sample.id, expires_in=60)
    world.sim.tokens.refresh(world.credentials(sample.id).load().refresh_token)
    world.clock.advance(31 * 60)
    with pytest.raises(ReconnectNeeded):
        pull(world.connector(sample.id))
    row = world.connection_row(sample.id)
    assert row["status"] == "reconnect_needed" and "auth connect" in row["status_detail"]


@pytest.mark.parametrize("concurrent", [1, 5], ids=["page-by-page", "ahead"])
def test_invalid_grant_marks_the_connection_and_is_not_retried(world, sample, concurrent):
    """No API call and no retry. Fetching ahead, the pass starts with two first pages whose
    threads both find the token expired: the refresh token the first one had refused is not
    sent again by the second."""
    world.connect(sample.id, expires_in=-1)
    world.sim.tokens.revoke(world.credentials(sample.id).load().refresh_token)
    with pytest.raises(ReconnectNeeded, match="reconnect needed"):
        pull(world.connector(sample.id, concurrent=concurrent))
    assert world.connection_row(sample.id)["status"] == "reconnect_needed"
    assert world.sim.counters.requests == {"token": 1}
