"""Requests derived from the server's own /openapi.json (schemathesis), sent over real HTTP to
`arsync serve` over synced books, on SQLite and PostgreSQL.

A portal generates its client from the document, so every answer must hold to it: no 5xx, a
status the operation declares, the declared content type, headers and body schema; input
the document calls invalid is refused (4xx), never a traceback. Generated path parameters
are mostly replaced by the store's own companies and customers, and requests carry the
company's key most of the time, so the 200s are reached as well as the 401s, 404s and 422s.

`ARSYNC_HTTP_FUZZ_EXAMPLES` sets the examples per operation and mode (default: few enough
for CI's budget of 30 s for both stores; run with 500 to fuzz for real).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from sync.http.webhook_events import signature
from tests.http.conftest import COMPANIES, QBO_VERIFIER, XERO_KEY, Served

EXAMPLES = int(os.environ.get("ARSYNC_HTTP_FUZZ_EXAMPLES", "12"))
# `sync.http.steady`: each answer of these leaves 0.25 s after its request came in
STEADY_EXAMPLES = max(2, EXAMPLES // 4)
STEADY = {"requestAccess", "acceptInvitation"}
WEBHOOKS = {
    "receiveQuickBooksWebhook": ("intuit-signature", QBO_VERIFIER),
    "receiveXeroWebhook": ("x-xero-signature", XERO_KEY),
}
KINDS = {"receiveQuickBooksWebhook": "quickbooks", "receiveXeroWebhook": "xero"}
PORTAL = [
    "listAccounts", "listInvoices", "getBalance", "listPayments", "listCredits", "getStatement",
    "getStatementPdf", "requestAccess", "acceptInvitation",
]  # fmt: skip
# What each portal route answers once the key, company and customer are right (no token is a
# real invitation's)
ANSWERED = {op: 200 for op in PORTAL} | {"requestAccess": 202, "acceptInvitation": 400}
OPS = ["getHealth", "getReadiness", "getMetrics"]
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Books:
    """What the store holds, to aim generated requests at: customers in the portal by company,
    and the emails of their contacts."""

    refs: dict[str, list[str]]
    emails: dict[str, list[str]]


@pytest.fixture(scope="module")
def document(served: Served) -> schemathesis.BaseSchema:
    """The document as a portal fetches it: over HTTP from the running server."""
    return schemathesis.openapi.from_url(f"{served.base}/openapi.json")


@pytest.fixture(scope="module")
def books(served: Served) -> Books:
    engine = served.engine()
    try:
        with engine.connect() as connection:
            customers = connection.exec_driver_sql(
                "SELECT company_id, customer_ref FROM portal_customers"
            ).all()
            contacts = connection.exec_driver_sql("SELECT company_id, email FROM portal_accounts").all()
    finally:
        engine.dispose()
    refs = {c: sorted({r for company, r in customers if company == c}) for c in COMPANIES}
    emails = {c: sorted({e for company, e in contacts if company == c}) for c in COMPANIES}
    assert all(refs.values()) and all(emails.values()), (refs, emails)
    return Books(refs, emails)


def operation(document: schemathesis.BaseSchema, operation_id: str):
    return document.find_operation_by_id(operation_id)


def test_the_fuzzed_operations_are_every_operation_of_the_document(document):
    """A route added later is fuzzed too: it must be named in one of the lists here."""
    found = {result.ok().definition.raw["operationId"] for result in document.get_all_operations()}
    assert found == {*PORTAL, *OPS, *WEBHOOKS}


def fuzz_settings(examples: int) -> settings:
    # deadline: a request's time is the server's, not the generator's; the health checks
    # measure generation, which here includes a request over HTTP
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


def modes(op) -> st.SearchStrategy:
    """Valid and invalid requests as the document defines them (an operation with no input
    has no invalid ones)."""
    positive = op.as_strategy(GenerationMode.POSITIVE)
    if not op.path_parameters and not op.query and not op.body:
        return positive
    return st.one_of(positive, op.as_strategy(GenerationMode.NEGATIVE))


@pytest.mark.parametrize("operation_id", PORTAL)
def test_portal_answers_hold_to_the_document(served: Served, document, books: Books, operation_id: str):
    op = operation(document, operation_id)
    examples = STEADY_EXAMPLES if operation_id in STEADY else EXAMPLES
    seen: set[int] = set()

    @fuzz_settings(examples)
    @given(case=modes(op), data=st.data())
    def run(case, data):
        aim(case, data, books, served)
        response = case.call(base_url=served.base, timeout=10)
        seen.add(response.status_code)
        case.validate_response(response, checks=checks_for(case))
        assert_names_the_problem(response)

    run()
    assert ANSWERED[operation_id] in seen, (operation_id, seen)  # the aim reached the route's own answer


def aim(case, data, books: Books, served: Served) -> None:
    """Aim the case at the store's own companies and customers, with their key, most of the
    time. The simplest draws (hypothesis tries them first) are the aimed ones, so a run of a
    few examples reaches the route's answer, not only its refusals.

    An invalid case keeps what was generated except the company and its key: the key is
    checked first (401) and the company next (404), so without them no invalid parameter
    would ever reach the validation behind them."""
    positive = case.meta.generation.mode is GenerationMode.POSITIVE
    generated = case.path_parameters.get("company")
    company = data.draw(st.sampled_from([*COMPANIES, generated] if positive else COMPANIES), label="company")
    case.path_parameters["company"] = company
    refs = books.refs.get(company)
    if positive and refs and "ref" in case.path_parameters and data.draw(st.integers(0, 3), label="ref?") < 3:
        case.path_parameters["ref"] = data.draw(st.sampled_from(refs), label="ref")
    emails = books.emails.get(company)
    if (
        positive
        and emails
        and "email" in case.query
        and not data.draw(st.booleans(), label="generated email")
    ):
        case.query["email"] = data.draw(st.sampled_from(emails), label="email")
    own, other = (
        served.keys.get(company, served.keys["qbo"]),
        served.keys["xero" if company != "xero" else "qbo"],
    )
    key = own
    if positive:  # 7 in 10 its own key, else another company's, a bad one or none
        key = [own] * 7 + [other, "nonsense", None]
        key = key[data.draw(st.integers(0, 9), label="key")]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    case.headers = headers


# A 422 names what was wrong and where (`sync.http.errors.validation_message`)
NAMED = ("query parameter '", "path parameter '", "body field '", "header '", "request body")


def assert_names_the_problem(response: requests.Response) -> None:
    """A refusal says what was refused: a message of its own, never "internal error" nor an
    empty one, and a 422 names the parameter or the body."""
    if 400 <= response.status_code < 500:
        error = response.json()["error"]
        assert error and error != "internal error", response.text
        if response.status_code == 422:
            assert error.startswith(NAMED), error


def checks_for(case) -> list:
    if case.meta.generation.mode is GenerationMode.NEGATIVE:
        return [*CONFORMANCE, negative_data_rejection]
    return CONFORMANCE


@pytest.mark.parametrize("operation_id", OPS)
def test_ops_answers_hold_to_the_document(served: Served, document, operation_id: str):
    op = operation(document, operation_id)
    seen: set[int] = set()

    @fuzz_settings(max(2, EXAMPLES // 4))  # no input to vary but headers
    @given(case=modes(op))
    def run(case):
        response = case.call(base_url=served.base, timeout=10)
        seen.add(response.status_code)
        case.validate_response(response, checks=CONFORMANCE)

    run()
    assert seen == {200}, operation_id


def schedule(served: Served) -> dict[str, object]:
    engine = served.engine()
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT company_id, requested_at FROM sync_schedule").all()
    finally:
        engine.dispose()
    return dict(rows)


@pytest.fixture
def schedule_kept(served: Served) -> Iterator[dict[str, object]]:
    """The sync requests as they were, put back after the test (other tests of the package
    count them on this server)."""
    before = schedule(served)
    yield before
    engine = served.engine()
    try:
        with engine.begin() as connection:
            for company, requested_at in before.items():
                connection.execute(
                    text("UPDATE sync_schedule SET requested_at = :at WHERE company_id = :company"),
                    {"at": requested_at, "company": company},
                )
    finally:
        engine.dispose()


def raw_request(case, served: Served, signed_with: tuple[str, str] | None, data) -> requests.Response:
    """The case sent as the bytes its signature is over (signed, or with a wrong one or none)."""
    kwargs = case.as_transport_kwargs(base_url=served.base)
    if "json" in kwargs:
        kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
    body = kwargs.get("data") or b""
    header, secret = WEBHOOKS[case.operation.definition.raw["operationId"]]
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != header}
    if signed_with is not None:
        headers[header] = signature(secret, body)
    else:
        wrong = data.draw(
            st.sampled_from([None, "", signature(secret, body + b" "), signature("not the secret", body)])
            | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60),
            label="signature",
        )
        if wrong is not None:
            headers[header] = wrong
    kwargs["headers"] = headers
    return requests.request(**kwargs, timeout=10)


def naming_a_known_source(body, kind: str, served: Served) -> bool:
    """Whether `body` could be made to name the store's realm (`kind` quickbooks) or tenant
    (xero) in its first event; it is changed in place."""
    if kind == "xero":
        events, name, source = (
            body.get("events") if isinstance(body, dict) else None,
            "tenantId",
            served.xero_tenant,
        )
    elif isinstance(body, dict):
        events, name, source = body.get("eventNotifications"), "realmId", served.qbo.realms[0]
    else:  # CloudEvents: an array of events
        events, name, source = body, "intuitaccountid", served.qbo.realms[0]
    if isinstance(events, list) and events and isinstance(events[0], dict):
        events[0][name] = source
        return True
    return False


def clear_requests(served: Served) -> None:
    engine = served.engine()
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE sync_schedule SET requested_at = NULL"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("operation_id", sorted(WEBHOOKS))
def test_unsigned_webhooks_are_401_and_change_nothing(
    served: Served, document, schedule_kept, operation_id: str
):
    op = operation(document, operation_id)
    statuses: set[int] = set()

    @fuzz_settings(EXAMPLES)
    @given(case=modes(op), data=st.data())
    def run(case, data):
        if data.draw(st.booleans(), label="a known realm or tenant"):
            naming_a_known_source(case.body, KINDS[operation_id], served)
        response = raw_request(case, served, None, data)
        statuses.add(response.status_code)
        assert response.status_code == 401 and response.content == b""
        case.validate_response(response, checks=CONFORMANCE)

    run()
    assert statuses == {401}
    assert schedule(served) == schedule_kept


@pytest.mark.parametrize("operation_id", sorted(WEBHOOKS))
def test_signed_webhooks_are_read_whatever_they_hold(
    served: Served, document, schedule_kept, operation_id: str
):
    """A good signature over any body is answered 200 (SPEC section 12: whatever the work
    behind it; an unreadable one is logged), and a body naming the store's realm or tenant
    requests its companies' syncs before that answer.

    `negative_data_rejection` does not apply: the document describes what Intuit and Xero
    send, and a signed body it does not describe is still answered 200, not refused."""
    op = operation(document, operation_id)
    companies = [c for c in COMPANIES if (c == "xero") == (KINDS[operation_id] == "xero")]

    @fuzz_settings(EXAMPLES)
    @given(case=modes(op), data=st.data())
    def run(case, data):
        known = data.draw(st.booleans(), label="a known realm or tenant") and naming_a_known_source(
            case.body, KINDS[operation_id], served
        )
        if known:
            clear_requests(served)
        response = raw_request(case, served, WEBHOOKS[operation_id], data)
        assert response.status_code == 200 and response.content == b"", response.text
        case.validate_response(response, checks=CONFORMANCE)
        if known and case.meta.generation.mode is GenerationMode.POSITIVE:
            requested = schedule(served)
            assert all(requested[c] is not None for c in companies), requested

    run()
