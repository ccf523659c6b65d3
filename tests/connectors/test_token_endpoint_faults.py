"""The token endpoint fails once, then works: both connectors retry the refresh with backoff
and the sync completes (one shared policy, `connectors.bearer`).

A full pull asks several pages at once (QuickBooks: the batch and three first pages; Xero: two
listings' first pages), each in its own thread. When the endpoint stays down, each thread ran
the whole retry policy on its own: 24 (QuickBooks) or 12 (Xero) token requests for a policy
of 6. The threads share one refresh: its tries are the policy's, and once it gives up no
thread sends another."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from sqlalchemy import Engine

from connectors.base import ConnectorError
from connectors.bearer import classify_token_failure
from connectors.errors import Action
from connectors.oauth import TokenEndpoint, TokenEndpointError
from connectors.registry import create_connector
from connectors.retry import MAX_ATTEMPTS
from connectors.simulators.quickbooks import TOKEN_PATH
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    COMPANY,
    NOW,
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
    assert len({i.ref for page in pages for i in page.of("invoices")}) == INVOICES
    assert sum(page.api_calls for page in pages) == qbo.sim.counters.total()


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


@contextmanager
def token_endpoint(answer: Callable[[bytes, str | None], tuple[int, dict]]) -> Iterator[str]:
    """A real token endpoint on loopback: `answer(form, authorization)` gives each POST's
    status and JSON body. Yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            form = self.rfile.read(int(self.headers["Content-Length"]))
            status, payload = answer(form, self.headers["Authorization"])
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def token_endpoint_keeping_the_refresh_token(token_url: str) -> Iterator[str]:
    """A real token endpoint in front of the simulator's that answers a refresh the way RFC 6749
    section 6 allows (and SPEC section 3 says QuickBooks may): new access token, no new refresh
    token, meaning the client keeps the one it has."""

    def answer(form: bytes, authorization: str | None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if authorization:
            headers["Authorization"] = authorization
        upstream = requests.post(token_url, data=form, headers=headers, timeout=10)
        payload = upstream.json()
        payload.pop("refresh_token", None)
        return upstream.status_code, payload

    with token_endpoint(answer) as url:
        yield url


def test_a_refresh_answered_without_a_new_refresh_token_keeps_the_stored_one(qbo):
    original = qbo.store_tokens(expires_in=-60)
    with token_endpoint_keeping_the_refresh_token(qbo.sim.token_url) as token_url:
        settings = replace(qbo.settings(page_size=50, concurrent=1), token_url=token_url)
        pages = list(create_connector(settings, qbo.credentials()).pages(None))
    assert len({i.ref for page in pages for i in page.of("invoices")}) == INVOICES
    stored = qbo.credentials().load()
    assert stored.refresh_token == original.refresh_token  # kept, as the answer asked
    assert stored.access_token != original.access_token and qbo.sim.tokens.check(stored.access_token)
    assert qbo.connection_row()["status"] == "ok"


def test_a_code_exchange_answered_without_a_refresh_token_says_so(qbo):
    """No refresh token for a new grant (Xero without the offline_access scope): a connector
    error `arsync auth connect` reports in one line, not a KeyError."""
    with token_endpoint_keeping_the_refresh_token(qbo.sim.token_url) as token_url:
        endpoint = TokenEndpoint(token_url, qbo.sim.tokens.client_id, qbo.sim.tokens.client_secret)
        with pytest.raises(TokenEndpointError, match="without a refresh token"):
            endpoint.exchange_code(qbo.sim.tokens.authorize(), "http://127.0.0.1/callback", NOW)


@contextmanager
def token_endpoint_echoing_the_request(status: int, error: str) -> Iterator[str]:
    """A token endpoint (or a gateway before it) that answers `status` with `error`, and in the
    error's text everything the client sent: the form (the refresh token) and the Basic
    credential (the client secret)."""

    def answer(form: bytes, authorization: str | None) -> tuple[int, dict]:
        echoed = f"request was: {form.decode()} auth: {authorization}"
        return status, (
            {"error": echoed} if error == "echo" else {"error": error, "error_description": echoed}
        )

    with token_endpoint(answer) as url:
        yield url


def _leaks(text: str, refresh_token: str, client_secret: str, client_id: str) -> list[str]:
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return [secret for secret in (refresh_token, client_secret, basic) if secret in text]


@pytest.mark.parametrize(
    ("status", "error"), [(500, "echo"), (400, "invalid_grant")], ids=["500", "invalid-grant"]
)
def test_a_token_endpoint_echoing_the_request_leaks_no_secret_into_the_error(status, error):
    """The endpoint's words become a run's stored error or a connection's "reconnect needed"
    detail, which `status` and `history` print: an endpoint echoing the request put the live
    refresh token and the client's Basic credential (its secret) there, unredacted."""
    with token_endpoint_echoing_the_request(status, error) as token_url:
        endpoint = TokenEndpoint(token_url, "cid-public", "CLIENT-SECRET-zz99")
        with pytest.raises(Exception) as raised:
            endpoint.refresh("REFRESH-TOKEN-bb22", NOW)
    message = str(raised.value)
    assert "request was: grant_type=refresh_token&refresh_token=***" in message
    assert _leaks(message, "REFRESH-TOKEN-bb22", "CLIENT-SECRET-zz99", "cid-public") == []


def test_a_refused_refresh_echoing_the_request_is_stored_without_it(qbo):
    """End to end: the connection marked "reconnect needed" keeps the endpoint's reason, not the
    secrets it echoed."""
    stored = qbo.store_tokens(expires_in=-60)
    with token_endpoint_echoing_the_request(400, "invalid_grant") as token_url:
        settings = replace(qbo.settings(page_size=50, concurrent=1), token_url=token_url)
        with pytest.raises(Exception, match="reconnect"):
            list(create_connector(settings, qbo.credentials()).pages(None))
    row = qbo.connection_row()
    assert row["status"] == "reconnect_needed" and "request was:" in row["status_detail"]
    secret, client = qbo.sim.tokens.client_secret, qbo.sim.tokens.client_id
    assert _leaks(row["status_detail"], stored.refresh_token, secret, client) == []


def test_xero_a_refused_refresh_echoing_the_request_is_stored_without_it(world: XeroWorld, sample):
    """Xero's refresh goes through the same token endpoint: its "reconnect needed" detail keeps
    the endpoint's reason, not the refresh token and client secret the endpoint echoed."""
    stored = world.connect(sample.id, expires_in=60).load()  # due for refresh before the first request
    with token_endpoint_echoing_the_request(400, "invalid_grant") as token_url:
        settings = replace(world.settings(sample.id), token_url=token_url)
        with pytest.raises(Exception, match="reconnect"):
            list(create_connector(settings, world.credentials(sample.id)).pages(None))
    row = world.connection_row(sample.id)
    assert row["status"] == "reconnect_needed" and "request was:" in row["status_detail"]
    secret, client = world.sim.tokens.client_secret, world.sim.tokens.client_id
    assert _leaks(row["status_detail"], stored.refresh_token, secret, client) == []
