"""Health, readiness, metrics and the OpenAPI document: no key needed."""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
from datetime import date
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sync.commands.serve import _listen
from sync.config import ConfigError, load_config
from sync.http.app import create_app
from tests.http.conftest import Served, run_cli, serving_in_thread

ROUTES = {
    "/v1/companies/{company}/accounts",
    "/v1/companies/{company}/customers/{ref}/invoices",
    "/v1/companies/{company}/customers/{ref}/balance",
    "/v1/companies/{company}/customers/{ref}/payments",
    "/v1/companies/{company}/customers/{ref}/credits",
    "/v1/companies/{company}/customers/{ref}/statement",
    "/v1/companies/{company}/request-access",
    "/v1/companies/{company}/invitations/accept",
    "/webhooks/quickbooks",
    "/webhooks/xero",
    "/healthz",
    "/readyz",
    "/metrics",
}


def test_health_readiness_and_openapi_need_no_key(served: Served):
    with served.client() as client:
        health = client.get("/healthz")
        ready = client.get("/readyz")
        document = client.get("/openapi.json")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert document.status_code == 200
    assert set(document.json()["paths"]) >= ROUTES
    assert "HTTPBearer" in document.json()["components"]["securitySchemes"]


def test_head_is_answered_as_get_without_the_body(served: Served):
    """Uptime monitors send HEAD; RFC 9110 asks that a server supporting GET support it."""
    paths = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/companies/qbo/customers/1/invoices"]
    with served.client("qbo") as keyed, served.client() as anonymous:
        for path in paths:
            get, head = keyed.get(path), keyed.head(path)
            assert (head.status_code, head.content) == (get.status_code, b""), path
            assert get.status_code == 200 and get.content, path
            assert head.headers["content-type"] == get.headers["content-type"], path
            if path != "/metrics":  # its counters may move between the two requests
                assert head.headers["content-length"] == str(len(get.content)), path
        no_key = anonymous.head("/v1/companies/qbo/customers/1/invoices")
        post_only = anonymous.head("/webhooks/xero")
        get_only = anonymous.post("/healthz")
    assert (no_key.status_code, no_key.content) == (401, b"")
    assert (post_only.status_code, post_only.headers["allow"]) == (405, "POST")
    assert (get_only.status_code, get_only.headers["allow"]) == (405, "GET, HEAD")  # as served


def test_options_names_the_methods_a_path_allows(served: Served):
    """RFC 9110: OPTIONS says what a resource supports; no key needed, nothing of a company told."""
    with served.client() as anonymous:
        answers = {
            path: anonymous.options(path)
            for path in ("/healthz", "/webhooks/xero", "/v1/companies/qbo/customers/1/invoices", "/nope")
        }
    allowed = {path: (a.status_code, a.headers.get("allow")) for path, a in answers.items()}
    assert allowed == {
        "/healthz": (204, "GET, HEAD, OPTIONS"),
        "/webhooks/xero": (204, "POST, OPTIONS"),
        "/v1/companies/qbo/customers/1/invoices": (204, "GET, HEAD, OPTIONS"),
        "/nope": (404, None),
    }
    assert answers["/healthz"].content == b"" and answers["/nope"].json() == {"error": "not found"}


READS = {  # each read route's answer for customer 1 of `qbo`, and its declared schema
    "/v1/companies/qbo/accounts?email=ap@cafe.example": "AccountsOut",
    "/v1/companies/qbo/customers/1/invoices": "InvoicesOut",
    "/v1/companies/qbo/customers/1/balance": "BalanceOut",
    "/v1/companies/qbo/customers/1/payments": "PaymentsOut",
    "/v1/companies/qbo/customers/1/credits": "CreditsOut",
    "/v1/companies/qbo/customers/1/statement": "StatementOut",
}


def test_read_answers_hold_to_the_schemas_the_openapi_document_declares(served: Served):
    """The read routes encode their answers themselves (msgspec): each must still be exactly
    the declared schema, with money as strings where the schema says so."""
    with served.client("qbo") as client:
        document = client.get("/openapi.json").json()
        answers = {path: client.get(path) for path in READS}
    schemas = document["components"]["schemas"]
    for path, name in READS.items():
        answer = answers[path]
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json", path
        route = (
            path.split("?")[0].replace("/qbo/", "/{company}/").replace("/customers/1/", "/customers/{ref}/")
        )
        declared = document["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]
        assert declared["schema"]["$ref"].endswith(f"/{name}")
        _conforms(answer.json(), schemas[name], schemas, path)
    assert answers["/v1/companies/qbo/customers/1/invoices"].json()["invoices"], "no invoice to check"


def test_error_answers_hold_to_the_schema_the_openapi_document_declares(served: Served):
    """Every error a `/v1/` route declares is `{"error": ...}`, as the server sends it: not
    FastAPI's default `{"detail": [...]}`, which a client generated from the document would
    expect for a 422."""
    with served.client("qbo") as client:
        document = client.get("/openapi.json").json()
        malformed = client.get("/v1/companies/qbo/customers/1/balance", params={"on": "2026-13-01"})
        json_body = {"Content-Type": "application/json"}
        too_large = client.post("/v1/companies/qbo/request-access", content=b"x" * 20_000, headers=json_body)
        # the body limit holds on every /v1/ route: a GET may carry a body too
        get_too_large = client.request("GET", "/v1/companies/qbo/customers/1/invoices", content=b"x" * 20_000)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    declared = {
        (route, method, status): response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for route, methods in document["paths"].items()
        if route.startswith("/v1/")
        for method, operation in methods.items()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }
    assert set(declared.values()) == {"ErrorOut"}
    balance = "/v1/companies/{company}/customers/{ref}/balance"
    assert {(balance, "get", status) for status in ("401", "404", "422", "503")} <= set(declared)
    operations = {(route, method) for route, methods in document["paths"].items() for method in methods}
    assert {(route, method, "413") for route, method in operations if route.startswith("/v1/")} <= set(
        declared
    )
    assert (malformed.status_code, too_large.status_code, get_too_large.status_code) == (422, 413, 413)
    for answer in (malformed, too_large, get_too_large):
        _conforms(answer.json(), schemas["ErrorOut"], schemas, str(answer.status_code))


def test_ops_answers_hold_to_the_schemas_the_openapi_document_declares(served: Served, tmp_path: Path):
    """/readyz and /metrics, ready and not (no store yet): each answer is one the document
    declares, with its JSON schema."""
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "not-yet.db"}"\n')
    with served.client() as client:
        document = client.get("/openapi.json").json()
        answers = [("/readyz", client.get("/readyz"))]
    with serving_in_thread(create_app(config=load_config(config))) as base:
        answers += [(path, httpx.get(f"{base}{path}")) for path in ("/readyz", "/metrics")]
    assert [(path, a.status_code) for path, a in answers] == [
        ("/readyz", 200),
        ("/readyz", 503),
        ("/metrics", 503),
    ]
    schemas = document["components"]["schemas"]
    for path, answer in answers:
        declared = document["paths"][path]["get"]["responses"][str(answer.status_code)]
        schema = declared["content"][answer.headers["content-type"]]["schema"]
        _conforms(answer.json(), schema, schemas, f"{path} {answer.status_code}")


def _conforms(value, schema: dict, schemas: dict, where: str) -> None:
    """`value` has exactly the schema's properties, each of its JSON type (strings for money)."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    options = schema.get("anyOf", [schema])
    if value is None:
        assert any(o.get("type") == "null" for o in options), where
        return
    option = next((o for o in options if o.get("type") != "null"), options[0])
    if "$ref" in option:
        _conforms(value, option, schemas, where)
        return
    kind = option.get("type")
    if kind == "object" and "properties" in option:
        assert set(value) == set(option["properties"]), where
        for key, sub in option["properties"].items():
            _conforms(value[key], sub, schemas, f"{where}.{key}")
    elif kind == "object":
        assert isinstance(value, dict), where
        for key, item in value.items():
            _conforms(item, option.get("additionalProperties", {}), schemas, f"{where}.{key}")
    elif kind == "array":
        assert isinstance(value, list), where
        for item in value:
            _conforms(item, option["items"], schemas, f"{where}[]")
    elif kind is not None:
        python = {"string": str, "boolean": bool, "integer": int, "number": (int, float)}[kind]
        assert isinstance(value, python), (where, value)
        if option.get("format") == "date":
            date.fromisoformat(value)
        if "pattern" in option:  # money: a decimal string
            assert re.search(option["pattern"], value), (where, value)


def test_metrics_count_per_company_from_the_store(served: Served):
    with served.client() as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(answer.text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    types = {family.name: family.type for family in families}
    counters = ("arsync_syncs", "arsync_api_calls", "arsync_quarantined_records")
    assert [types[name] for name in counters] == ["counter"] * 3
    assert types["arsync_outbox_messages"] == types["arsync_mail_in_doubt"] == "gauge"
    # Prometheus keeps `_total` for counters: no gauge sample may carry it.
    assert not [s.name for f in families if f.type == "gauge" for s in f.samples if s.name.endswith("_total")]
    for company in ("qbo", "qbo_single", "qbo_all", "xero"):
        assert samples[("arsync_syncs_total", (("company", company), ("status", "ok")))] >= 1
        assert samples[("arsync_api_calls_total", (("company", company),))] >= 1
        assert ("arsync_quarantined_records_total", (("company", company),)) in samples
        assert samples[("arsync_mail_in_doubt", (("company", company),))] == 0
        assert ("arsync_outbox_messages", (("company", company), ("state", "queued"))) in samples
    assert samples[("arsync_syncs_total", (("company", "qbo"), ("status", "failed")))] == 0
    # a run in progress is a current count: a counter of it would fall when the run ends
    assert not [s for s in samples if s[0] == "arsync_syncs_total" and ("status", "running") in s[1]]
    assert (
        types["arsync_syncs_running"] == "gauge"
        and samples[("arsync_syncs_running", (("company", "qbo"),))] == 0
    )


def test_readiness_fails_on_an_unmigrated_store(tmp_path: Path):
    """Served in this process by uvicorn on loopback: the store file exists but has no schema."""
    config = tmp_path / "arsync.toml"
    sqlite3.connect(tmp_path / "empty.db").close()
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n')
    app = create_app(config=load_config(config))
    with serving_in_thread(app) as base:
        ready = httpx.get(f"{base}/readyz")
        health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200
    assert ready.status_code == 503
    assert "arsync db upgrade" in ready.json()["error"]


def test_metrics_of_a_store_at_another_revision_is_the_503_the_document_declares(tmp_path: Path):
    """A store another release migrated (here one revision behind): its tables still read, and
    the companies' check then refused it. That 503 came from the portal's handler, with a
    `Retry-After` the document does not declare for /metrics; /readyz says why."""
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "arsync.db"}"\n')
    assert run_cli(config, "db", "upgrade")[0] == 0
    with sqlite3.connect(tmp_path / "arsync.db") as store:
        store.execute("UPDATE alembic_version SET version_num = '0016_schedule_abandoned_runs'")
    store.close()
    with serving_in_thread(create_app(config=load_config(config))) as base:
        document = httpx.get(f"{base}/openapi.json").json()
        metrics = httpx.get(f"{base}/metrics")
    declared = document["paths"]["/metrics"]["get"]["responses"]["503"]
    assert metrics.status_code == 503 and set(metrics.json()) == {"error"}
    assert "retry-after" not in metrics.headers or "Retry-After" in declared.get("headers", {})


def test_the_importable_app_needs_webhook_keys_but_no_client_or_smtp_secret(tmp_path: Path, monkeypatch):
    """`uvicorn --factory sync.http.app:create_app` reads the file as `arsync serve` does."""
    for env in ("NO_CLIENT_SECRET_HERE", "NO_SMTP_PASSWORD_HERE", "SOME_XERO_KEY"):
        monkeypatch.delenv(env, raising=False)
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "a.db"}"\n'
        '[mail]\ntransport = "smtp"\nsmtp_username = "arsync"\nsmtp_password_env = "NO_SMTP_PASSWORD_HERE"\n'
        '[http]\nxero_webhook_key_env = "SOME_XERO_KEY"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\ntimezone = "UTC"\nportal_url = "https://portal.example"\n'
        '[companies.connection]\nkind = "xero"\ntenant_id = "t-1"\nclient_id = "c"\n'
        'client_secret_env = "NO_CLIENT_SECRET_HERE"\n'
    )
    with pytest.raises(ConfigError, match="http.xero_webhook_key_env: environment variable SOME_XERO_KEY"):
        create_app(config)
    monkeypatch.setenv("SOME_XERO_KEY", "k")
    app = create_app(config)
    assert [c.id for c in app.state.context.config.companies] == ["acme"]


def test_serve_configuration_errors_exit_2_naming_the_key(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_WEBHOOK_KEY", raising=False)
    config = tmp_path / "arsync.toml"
    config.write_text('[http]\nxero_webhook_key_env = "NO_SUCH_WEBHOOK_KEY"\n')
    code, _, err = run_cli(config, "serve")
    assert code == 2
    assert "http.xero_webhook_key_env: environment variable NO_SUCH_WEBHOOK_KEY is not set" in err
    monkeypatch.setenv("NO_SUCH_WEBHOOK_KEY", "")  # set, but a key that signs nothing
    code, _, err = run_cli(config, "serve")
    assert code == 2
    assert "http.xero_webhook_key_env: environment variable NO_SUCH_WEBHOOK_KEY is empty" in err
    config.write_text("[http]\nport = 70000\n")
    code, _, err = run_cli(config, "serve")
    assert code == 2 and "http.port" in err
    config.write_text('[http]\nlisten = "0.0.0.0"\n')
    code, _, err = run_cli(config, "serve")
    assert code == 2 and "http.listen: unknown key" in err


def test_serve_on_a_taken_port_is_one_line_and_exit_1(tmp_path: Path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "a.db"}"\n')
    try:
        code, _, err = run_cli(config, "serve", "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert code == 1
    assert "cannot listen on 127.0.0.1:" in err and "Traceback" not in err


def test_served_connections_set_tcp_nodelay():
    """Each answer leaves at once: without TCP_NODELAY the small writes of a response waited
    for the client's delayed ACK, 40 ms a request (22 requests/s for one keep-alive client).
    asyncio sets it on accepted connections only when the listening socket is IPPROTO_TCP."""
    listener = _listen("127.0.0.1", 0)
    flags: list[int] = []

    async def accept_one() -> None:
        async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            flags.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=listener)
        reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(accept_one())
    assert len(flags) == 1 and flags[0] != 0


def test_the_document_declares_what_a_generated_client_needs(served: Served):
    """A portal in another language generates its client from /openapi.json: money must be
    recognisable as decimal strings, the aging's buckets named, the email rule stated, and the
    500 every route may answer (`{"error": "internal error"}`) declared."""
    with served.client() as client:
        document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    money = schemas["InvoiceOut"]["properties"]["total"]
    assert money["type"] == "string" and re.fullmatch(money["pattern"], "-123.40")
    assert not re.search(money["pattern"], "12") and not re.search(money["pattern"], "1e3")
    assert set(schemas["AgingOut"]["properties"]) == {"current", "1_30", "31_60", "61_90", "over_90"}
    email = schemas["RequestAccessIn"]["properties"]["email"]["pattern"]
    assert re.fullmatch(email, " ap@cafe.example ") and not re.fullmatch(email, "notanemail")
    invoices = document["paths"]["/v1/companies/{company}/customers/{ref}/invoices"]["get"]["responses"]
    assert "WWW-Authenticate" in invoices["401"]["headers"] and "Retry-After" in invoices["503"]["headers"]
    operations = [op for methods in document["paths"].values() for op in methods.values()]
    # every answer with a body says what it is: a generated client reads none without a schema
    contents = [
        (op["operationId"], status, media)
        for op in operations
        for status, answer in op["responses"].items()
        for media, content in answer.get("content", {}).items()
        if "schema" not in content or content["schema"].get("additionalProperties") is True
    ]
    assert contents == []
    assert operations and all(
        op["responses"]["500"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
        for op in operations
    )


OPERATIONS = {
    ("get", "/v1/companies/{company}/accounts"): "listAccounts",
    ("get", "/v1/companies/{company}/customers/{ref}/invoices"): "listInvoices",
    ("get", "/v1/companies/{company}/customers/{ref}/balance"): "getBalance",
    ("get", "/v1/companies/{company}/customers/{ref}/payments"): "listPayments",
    ("get", "/v1/companies/{company}/customers/{ref}/credits"): "listCredits",
    ("get", "/v1/companies/{company}/customers/{ref}/statement"): "getStatement",
    ("get", "/v1/companies/{company}/customers/{ref}/statement.pdf"): "getStatementPdf",
    ("post", "/v1/companies/{company}/request-access"): "requestAccess",
    ("post", "/v1/companies/{company}/invitations/accept"): "acceptInvitation",
    ("post", "/webhooks/quickbooks"): "receiveQuickBooksWebhook",
    ("post", "/webhooks/xero"): "receiveXeroWebhook",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
}


def test_a_generated_client_names_each_operation_as_a_person_would(served: Served):
    """Client generators name their methods after operationId. FastAPI's own were the function
    name and the whole path (`invoices_v1_companies__company__customers__ref__invoices_get`,
    a method `invoicesV1CompaniesCompanyCustomersRefInvoicesGet` in TypeScript), which also
    changed with any rename; they are now set, short and part of the contract, and each
    operation has a summary of its own."""
    with served.client() as client:
        document = client.get("/openapi.json").json()
    found = {
        (method, path): op["operationId"]
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    }
    assert found == OPERATIONS
    summaries = [op["summary"] for methods in document["paths"].values() for op in methods.values()]
    assert len(set(summaries)) == len(summaries) == len(OPERATIONS)


def test_an_idle_keep_alive_connection_outlives_uvicorns_five_seconds(served: Served):
    """Behind a load balancer or reverse proxy, idle connections are reused for up to its own
    idle timeout (AWS ALB and nginx: 60 s): `arsync serve` closed them after uvicorn's 5 s, so
    a request the proxy sent on one as it closed was a 502. Here the connection is still open
    6 s after its first answer and serves a second request."""
    host, port = served.base.removeprefix("http://").rsplit(":", 1)
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)
        assert _answer(connection).startswith(b"HTTP/1.1 200")
        connection.settimeout(6)
        with pytest.raises(TimeoutError):  # nothing comes: not even the server closing it (b"")
            connection.recv(1)
        connection.settimeout(5)
        connection.sendall(request)
        assert _answer(connection).startswith(b"HTTP/1.1 200")


def _answer(connection: socket.socket) -> bytes:
    """One whole answer (headers and its Content-Length of body) read from `connection`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(body) < length:
        body += connection.recv(4096)
    return data
