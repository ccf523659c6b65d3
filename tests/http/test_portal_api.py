"""The portal API through real HTTP: keys, isolation, each route's answers and status codes."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from mailer.environment import TemplateProblem
from store import portal
from store.invitations import issue_invitation, load_accounts
from sync.config import load_config
from sync.http.app import create_app
from sync.http.steady import STEADY
from sync.invites import issue_requested
from sync.settings import company_policy
from tests.http.conftest import Served, serving_in_thread


def test_a_missing_or_bad_key_is_401_whatever_the_company(served: Served):
    well_formed_unknown = "ak_000000000000_" + "x" * 43
    for key in (None, "nonsense", well_formed_unknown, served.keys["qbo"] + "x"):
        with served.client(key=key) as client:
            for company in ("qbo", "nope"):
                answer = client.get(f"/v1/companies/{company}/customers/1/invoices")
                assert answer.status_code == 401, (key, company)
                assert answer.json() == {"error": "missing or invalid API key"}
                assert answer.headers["www-authenticate"] == "Bearer"
    with served.client() as client:
        basic = client.get("/v1/companies/qbo/customers/1/invoices", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401


def test_a_key_reaches_its_own_company_only_and_others_look_unknown(served: Served):
    with served.client("qbo") as client:
        own = client.get("/v1/companies/qbo/customers/1/invoices")
        other = client.get("/v1/companies/xero/customers/1/invoices")
        unknown = client.get("/v1/companies/nope/customers/1/invoices")
        other_post = client.post("/v1/companies/xero/request-access", json={"email": "a@b.example"})
    assert own.status_code == 200
    assert (other.status_code, other.json(), other.headers["content-length"]) == (
        unknown.status_code,
        unknown.json(),
        unknown.headers["content-length"],
    )
    assert other.status_code == 404 and other.json() == {"error": "no such company"}
    assert other_post.status_code == 404
    with served.client("xero") as client:
        assert client.get("/v1/companies/qbo/customers/1/invoices").status_code == 404


def test_invoices_are_the_visible_ones_with_money_as_strings_and_iso_dates(served: Served):
    with served.client("qbo") as client:
        answer = client.get("/v1/companies/qbo/customers/1/invoices")
        missing = client.get("/v1/companies/qbo/customers/999/invoices")
        inactive = client.get("/v1/companies/qbo/customers/2/invoices")  # not imported by `qbo`
    assert answer.status_code == 200
    invoices = answer.json()["invoices"]
    expected = portal.visible_invoices(served.engine(), "qbo", "1")
    assert [i["invoice_ref"] for i in invoices] == [e.invoice_ref for e in expected]
    assert {i["invoice_ref"] for i in invoices} == {"101", "102", "104", "105"}  # not unsent 103, voided 109
    first = next(i for i in invoices if i["invoice_ref"] == "101")
    assert first["total"] == "100.00" and first["balance"] == "100.00"
    assert first["company_id"] == "qbo" and first["customer_ref"] == "1" and first["doc_number"] == "1001"
    assert date.fromisoformat(first["due_date"]) < datetime.now(UTC).date()
    assert set(first) == {
        "company_id", "customer_ref", "invoice_ref", "doc_number", "issue_date", "due_date",
        "currency", "total", "balance",
    }  # fmt: skip
    assert (missing.status_code, missing.json()) == (404, {"error": "no such customer"})
    assert inactive.status_code == 404


def test_balance_on_a_day_and_bad_dates(served: Served):
    today = datetime.now(UTC).date()
    with served.client("qbo") as client:
        now = client.get("/v1/companies/qbo/customers/1/balance", params={"on": today.isoformat()})
        early = client.get(
            "/v1/companies/qbo/customers/1/balance", params={"on": (today - timedelta(days=30)).isoformat()}
        )
        bad = {
            value: client.get("/v1/companies/qbo/customers/1/balance", params={"on": value})
            for value in ("tomorrow", "0", "1733400000", "20261204", "2026-13-01", " 2026-12-04")
        }
        statement = client.get("/v1/companies/qbo/customers/1/statement", params={"from": "0"})
        default = client.get("/v1/companies/qbo/customers/1/balance")
    assert now.status_code == 200
    body = now.json()
    # 101 (100.00, past due) + 102 (50.00) + 105 (30.00); 104 is paid.
    assert body["balance_due"] == "180.00"
    assert body["past_due_amount"] == "100.00" and body["past_due"] is True
    assert body["on"] == today.isoformat()
    assert early.json()["past_due"] is False and early.json()["past_due_amount"] == "0.00"
    # ISO 8601's YYYY-MM-DD only: not a number taken as a Unix time, nor the compact form
    assert {value: (a.status_code, a.json()["error"]) for value, a in bad.items()} == {
        "tomorrow": (422, "query parameter 'on': not a date (YYYY-MM-DD)"),
        "0": (422, "query parameter 'on': not a date (YYYY-MM-DD)"),
        "1733400000": (422, "query parameter 'on': not a date (YYYY-MM-DD)"),
        "20261204": (422, "query parameter 'on': not a date (YYYY-MM-DD)"),
        "2026-13-01": (422, "query parameter 'on': not a date: month must be in 1..12"),
        " 2026-12-04": (422, "query parameter 'on': not a date (YYYY-MM-DD)"),
    }
    assert (statement.status_code, statement.json()) == (
        422,
        {"error": "query parameter 'from': not a date (YYYY-MM-DD)"},
    )
    assert default.status_code == 200 and default.json()["balance_due"] == "180.00"


def test_accept_an_invitation_then_the_email_reaches_its_accounts(served: Served):
    engine = served.engine()
    now = datetime.now(UTC)
    company = _config(served, "qbo")
    with engine.begin() as connection:
        [account] = load_accounts(connection, "qbo", email="ap@cafe.example")
        issued = issue_invitation(
            connection, "qbo", account, policy=company_policy(company), portal_url=company.portal_url, now=now
        )
    engine.dispose()
    with served.client("qbo") as client:
        before = client.get("/v1/companies/qbo/accounts", params={"email": "AP@cafe.example"})
        accepted = client.post("/v1/companies/qbo/invitations/accept", json={"token": issued.token})
        again = client.post("/v1/companies/qbo/invitations/accept", json={"token": issued.token})
        unknown = client.post("/v1/companies/qbo/invitations/accept", json={"token": "not-a-token"})
        empty = client.post("/v1/companies/qbo/invitations/accept", json={"token": ""})
        too_long = client.post("/v1/companies/qbo/invitations/accept", json={"token": "x" * 600})
        after = client.get("/v1/companies/qbo/accounts", params={"email": "AP@cafe.example"})
        no_email = client.get("/v1/companies/qbo/accounts")
    with served.client("qbo_all") as client:  # same books, another company: its own invitations
        elsewhere = client.post("/v1/companies/qbo_all/invitations/accept", json={"token": issued.token})
    assert before.json() == {"accounts": []}
    assert accepted.status_code == 200
    assert accepted.json() == {"customer_ref": "1", "email": "ap@cafe.example", "status": "enabled"}
    for rejected in (again, unknown, empty, too_long, elsewhere):  # SPEC: 400, whatever the token
        assert (rejected.status_code, rejected.json()) == (400, {"error": "invalid invitation token"})
    assert after.json() == {
        "accounts": [{"customer_ref": "1", "display_name": "Café Müller", "status": "enabled"}]
    }
    assert no_email.status_code == 422 and "'email'" in no_email.json()["error"]


def test_request_access_answers_the_same_for_every_email_and_invites_the_eligible_one(served: Served):
    def outbox(email: str) -> int:
        return served.scalar(
            "SELECT COUNT(*) FROM outbox WHERE company_id = 'qbo_single' AND recipient LIKE :e",
            e=f"%{email}%",
        )

    with served.client("qbo_single") as client:
        known = client.post(
            "/v1/companies/qbo_single/request-access", json={"email": "Soon@Inactive.example"}
        )
        unknown = client.post("/v1/companies/qbo_single/request-access", json={"email": "who@nobody.example"})
        for _ in range(5):  # beyond the per-email limit: the same answer, no more invitations
            limited = client.post(
                "/v1/companies/qbo_single/request-access", json={"email": "soon@inactive.example"}
            )
        malformed = client.post("/v1/companies/qbo_single/request-access", json={"email": "nope"})
        not_json = client.post(
            "/v1/companies/qbo_single/request-access",
            content=b"{email",
            headers={"Content-Type": "application/json"},
        )
        undecodable = [  # bytes that are not UTF-8, nesting deeper than the decoder goes
            client.post(
                "/v1/companies/qbo_single/request-access",
                content=content,
                headers={"Content-Type": "application/json"},
            )
            for content in (b'{"email": "\xff@x.example"}', b"[" * 8_000 + b"]" * 8_000)
        ]
    assert known.status_code == unknown.status_code == limited.status_code == 202
    assert known.content == unknown.content == limited.content
    assert "invitation" in known.json()["message"]
    assert outbox("soon@inactive.example") == 0  # the worker issues it (test_request_access_answer.py)
    config = load_config(served.config)
    engine = served.engine()
    try:
        issued = issue_requested(engine, config, config.company("qbo_single"), now=datetime.now(UTC))
    finally:
        engine.dispose()
    assert issued >= 1
    assert outbox("soon@inactive.example") >= 1
    assert outbox("soon@inactive.example") <= 3  # the rate limit of SPEC section 2
    assert outbox("who@nobody.example") == 0
    assert (malformed.status_code, malformed.json()) == (
        422,
        {"error": "body field 'email': not an email address"},
    )
    assert (not_json.status_code, not_json.json()) == (422, {"error": "request body: not valid JSON"})
    for answer in undecodable:
        assert (answer.status_code, answer.json()) == (422, {"error": "request body: not valid JSON"})


def test_a_json_object_sent_as_another_content_type_is_told_which_one_to_use(served: Served):
    """FastAPI parses a body as JSON only under a JSON content type: the same object sent as
    text/plain, as a form or with no content type at all (as Java's HttpClient sends a string)
    arrives as something else, and the answer says what to change."""
    path = "/v1/companies/qbo_single/request-access"
    email = b'{"email": "a@b.example"}'
    with served.client("qbo_single") as client:
        plain = client.post(path, content=email, headers={"Content-Type": "text/plain"})
        form = client.post(path, data={"email": "a@b.example"})
        untyped = client.post(path, content=email)  # httpx sends no Content-Type for raw bytes
        empty_type = client.post(path, content=email, headers={"Content-Type": ""})
        array = client.post(path, content=b"[]", headers={"Content-Type": "application/json"})
    assert "content-type" not in untyped.request.headers
    hint = "request body: expected a JSON object (send it with Content-Type: application/json)"
    answers = [(a.status_code, a.json()["error"]) for a in (plain, form, untyped, empty_type)]
    assert answers == [(422, hint)] * 4
    plain_answer = "request body: expected a JSON object"  # JSON was sent, and it is not an object
    assert (array.status_code, array.json()["error"]) == (422, plain_answer)


def test_unknown_routes_and_methods_answer_json(served: Served):
    with served.client("qbo") as client:
        route = client.get("/v2/nothing")
        method = client.delete("/v1/companies/qbo/customers/1/invoices")
    assert (route.status_code, route.json()) == (404, {"error": "not found"})
    assert (method.status_code, method.json()) == (405, {"error": "method not allowed"})


def test_a_path_with_a_trailing_slash_is_not_found_rather_than_redirected(served: Served):
    """Starlette redirected `/healthz/` (307) to an absolute URL built from the Host header and
    the scheme it saw: behind a load balancer that ends TLS, `http://PUBLIC-HOST/...`, a
    downgrade, and a webhook registered with a trailing slash was a redirect Intuit and Xero do
    not follow. One spelling per path, as the document lists them; any other is a JSON 404."""
    paths = ["/healthz/", "/v1/companies/qbo/customers/1/invoices/"]
    with served.client("qbo") as client:
        answers = [client.get(path) for path in paths]
        answers.append(client.post("/webhooks/quickbooks/", content=b"{}"))
    for answer in answers:
        assert (answer.status_code, answer.json()) == (404, {"error": "not found"}), answer.request.url
        assert "location" not in answer.headers


def _config(served: Served, company_id: str):
    from sync.config import load_config

    return load_config(served.config).company(company_id)


@pytest.mark.parametrize(
    "body",
    [b"{email", b'{"email": "\xff\xfe@x.example"}', b"[" * 5_000],
    ids=["malformed JSON", "invalid UTF-8", "nested too deep"],
)
def test_malformed_input_is_answered_after_the_key_check(served: Served, body: bytes):
    """A caller without a valid key learns nothing of what a route expects: 401 first, and 404
    for another company's or an unknown one, also when the body is not even JSON, or bytes
    no JSON decoder reads (FastAPI answers those itself, before any validation)."""
    broken = {"content": body, "headers": {"Content-Type": "application/json"}}
    path = "/v1/companies/qbo_single/request-access"
    with (
        served.client() as nobody,
        served.client(key="ak_000000000000_" + "x" * 43) as bad_key,
        served.client("qbo") as other,
        served.client("qbo_single") as owner,
    ):
        answers = [
            nobody.post(path, **broken),
            bad_key.post(path, **broken),
            other.post(path, **broken),
            other.post("/v1/companies/nope/request-access", **broken),
            owner.post(path, **broken),
            owner.post("/v1/companies/qbo_single/invitations/accept", **broken),
        ]
    assert [(a.status_code, a.json()["error"]) for a in answers] == [
        (401, "missing or invalid API key"),
        (401, "missing or invalid API key"),
        (404, "no such company"),
        (404, "no such company"),
        (422, "request body: not valid JSON"),
        (422, "request body: not valid JSON"),
    ]


def test_a_body_over_the_portal_limit_is_refused_before_it_is_read_key_or_not(served: Served):
    """A portal call carries a few hundred bytes; a larger body is a 413 before the server
    buffers or parses it (it would otherwise read it all before its 401)."""
    path = "/v1/companies/qbo_single/request-access"
    big = b'{"email": "' + b"a" * 5_000_000 + b'@x.example"}'

    def streamed():
        yield b'{"email": "'
        for _ in range(1_000):
            yield b"a" * 4096
        yield b'@x.example"}'

    with served.client() as anonymous, served.client("qbo_single") as keyed:
        answers = [
            anonymous.post(path, content=big, headers={"Content-Type": "application/json"}),
            keyed.post(path, content=big, headers={"Content-Type": "application/json"}),
            anonymous.post(path, content=streamed(), headers={"Content-Type": "application/json"}),
        ]
        small = anonymous.post(path, json={"email": "a@b.example"})
    for answer in answers:
        assert (answer.status_code, answer.json()) == (413, {"error": "body over 16384 bytes"})
    assert "content-length" not in answers[2].request.headers  # sent in chunks, length unknown
    assert small.status_code == 401  # under the limit: the key check answers, as before


def test_text_no_encoding_can_hold_is_a_bad_token_or_malformed_input_never_a_500(served: Served):
    """A lone UTF-16 surrogate, as JSON's escape or as the raw bytes Python's decoder lets
    through: an invitation token holding one is no issued token (400, in the route's steady
    time); elsewhere it is malformed input. The connection stays usable after each."""
    json_body = {"Content-Type": "application/json"}
    with served.client("qbo") as client:
        tokens = []
        for body in (b'{"token": "\\ud800"}', b'{"token": "\xed\xa0\x80"}'):
            began = time.monotonic()
            answer = client.post("/v1/companies/qbo/invitations/accept", content=body, headers=json_body)
            tokens.append((answer.status_code, answer.json(), time.monotonic() - began >= STEADY))
        email = client.post(
            "/v1/companies/qbo/request-access", content=b'{"email": "\\ud800@x.example"}', headers=json_body
        )
        lookup = client.get("/v1/companies/qbo/accounts?email=%ED%A0%80@x.example")
        customer = client.get("/v1/companies/qbo/customers/%ED%A0%80/invoices")
        still = client.get("/v1/companies/qbo/customers/1/invoices")
    assert tokens == [(400, {"error": "invalid invitation token"}, True)] * 2
    assert email.status_code == 422 and email.json()["error"].startswith("body field 'email'")
    assert (lookup.status_code, lookup.json()) == (200, {"accounts": []})
    assert (customer.status_code, customer.json()) == (404, {"error": "no such customer"})
    assert still.status_code == 200


def test_the_portal_body_limit_holds_under_a_root_path(served: Served):
    """Under `uvicorn --root-path /api` (a proxy forwards `/api/v1/...` as `/v1/...`) the
    server's path carries the root path again (`/api/v1/...`): the limit goes by the path
    the routes see, not that one."""
    big = b'{"email": "' + b"a" * 5_000_000 + b'@x.example"}'
    json_body = {"Content-Type": "application/json"}
    app = create_app(config=load_config(served.config))
    with serving_in_thread(app, root_path="/api") as base, httpx.Client(base_url=base) as client:
        health = client.get("/healthz")
        too_large = client.post("/v1/companies/qbo/request-access", content=big, headers=json_body)
        small = client.post("/v1/companies/qbo/request-access", json={"email": "a@b.example"})
    assert health.status_code == 200
    assert (too_large.status_code, too_large.json()) == (413, {"error": "body over 16384 bytes"})
    assert small.status_code == 401  # under the limit: the key check answers


def test_requested_invitations_wait_while_the_company_has_no_portal_url(served: Served):
    # their link would be a bare /invite/TOKEN, and each supersedes the contact's working one
    email = served.scalar(
        "SELECT MAX(email) FROM portal_accounts WHERE company_id = 'qbo_single' AND eligible"
        " AND status = 'not_invited'"
    )
    sent = "SELECT COUNT(*) FROM outbox WHERE company_id = 'qbo_single' AND recipient LIKE :e"
    with served.client("qbo_single") as client:
        answer = client.post("/v1/companies/qbo_single/request-access", json={"email": email})
    assert answer.status_code == 202
    config = load_config(served.config)
    company = config.company("qbo_single").model_copy(update={"portal_url": ""})
    engine = served.engine()
    try:
        with pytest.raises(TemplateProblem, match="has no portal_url"):
            issue_requested(engine, config, company, now=datetime.now(UTC))
        assert served.scalar(sent, e=f"%{email}%") == 0
        issued = issue_requested(engine, config, config.company("qbo_single"), now=datetime.now(UTC))
    finally:
        engine.dispose()
    assert issued == 1  # the request waited for the fix
    assert served.scalar(sent, e=f"%{email}%") == 1


def test_a_parameter_out_of_its_length_says_so_in_characters(served: Served):
    """A customer id over 64 characters or an email under 3 is the request's mistake, worded
    as a string's length (the NUL check beside the bounds once made pydantic count them as a
    sequence's "items after validation"); a 64-character id is in bounds: an unknown one."""
    with served.client("qbo") as client:
        long_ref = client.get(f"/v1/companies/qbo/customers/{'a' * 65}/invoices")
        longest_ref = client.get(f"/v1/companies/qbo/customers/{'a' * 64}/invoices")
        short_email = client.get("/v1/companies/qbo/accounts", params={"email": "ab"})
        long_email = client.get("/v1/companies/qbo/accounts", params={"email": "a@" + "b" * 319})
    assert (long_ref.status_code, long_ref.json()) == (
        422,
        {"error": "path parameter 'ref': String should have at most 64 characters"},
    )
    assert longest_ref.status_code == 404
    assert (short_email.status_code, short_email.json()) == (
        422,
        {"error": "query parameter 'email': String should have at least 3 characters"},
    )
    assert (long_email.status_code, long_email.json()) == (
        422,
        {"error": "query parameter 'email': String should have at most 320 characters"},
    )
