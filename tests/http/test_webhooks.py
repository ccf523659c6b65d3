"""Webhooks through real HTTP: signatures over the raw body, both Intuit formats, Xero's intent
to receive, the size limit, and the coalesced sync requests they leave for the workers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from store.db import make_engine
from store.schedule import claim_due, release
from sync.cli import main
from sync.http.app import create_app
from sync.http.webhook_events import signature
from tests.http.conftest import COMPANIES, QBO_VERIFIER, XERO_KEY, Served, serving_in_thread

QBO_COMPANIES = ("qbo", "qbo_all", "qbo_single")


def legacy(realm: str) -> bytes:
    entity = {
        "name": "Invoice",
        "id": "101",
        "operation": "Update",
        "lastUpdated": "2026-12-01T10:00:00.000Z",
    }
    return json.dumps(
        {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [entity]}}]}
    ).encode()


def cloud_events(realm: str) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": "88cd52b0-6d5e-4d8c-b1ab-1a2b3c4d5e6f",
                "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
                "type": "qbo.invoice.updated.v1",
                "datacontenttype": "application/json",
                "time": "2026-12-01T10:00:00.000Z",
                "intuitentityid": "101",
                "intuitaccountid": realm,
                "data": {},
            }
        ]
    ).encode()


def xero_events(tenant: str) -> bytes:
    event = {
        "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/10000000-0000-4000-8000-000000000001",
        "resourceId": "10000000-0000-4000-8000-000000000001",
        "eventDateUtc": "2026-12-01T10:00:00.000",
        "eventType": "UPDATE",
        "eventCategory": "INVOICE",
        "tenantId": tenant,
        "tenantType": "ORGANISATION",
    }
    return json.dumps(
        {"events": [event], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "X"}
    ).encode()


INTENT_TO_RECEIVE = b'{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}'


def post(served: Served, kind: str, body: bytes, sig: str | None, **headers):
    name = "intuit-signature" if kind == "quickbooks" else "x-xero-signature"
    if sig is not None:
        headers[name] = sig
    with served.client() as client:
        return client.post(
            f"/webhooks/{kind}", content=body, headers={"content-type": "application/json", **headers}
        )


def requested(served: Served) -> set[str]:
    engine = served.engine()
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT company_id FROM sync_schedule WHERE requested_at IS NOT NULL"
            ).all()
    finally:
        engine.dispose()
    return {r[0] for r in rows}


def eventually(predicate, timeout: float = 5.0) -> bool:
    """The server answers after at most 0.8 s even if the requests are not recorded yet
    (a long SQLite write ahead of them); here they normally are, at once."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def clear_requests(served: Served) -> None:
    engine = served.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE sync_schedule SET requested_at = NULL")
    finally:
        engine.dispose()


@pytest.mark.parametrize("payload", [legacy, cloud_events], ids=["legacy", "cloudevents"])
def test_quickbooks_signed_notification_requests_a_sync_of_each_company_of_the_realm(served: Served, payload):
    clear_requests(served)
    realm = served.qbo.realms[0]
    body = payload(realm)
    missing = post(served, "quickbooks", body, None)
    bad = post(served, "quickbooks", body, signature("not the token", body))
    assert (missing.status_code, missing.content, bad.status_code, bad.content) == (401, b"", 401, b"")
    assert requested(served) == set()
    good = post(served, "quickbooks", body, signature(QBO_VERIFIER, body))
    assert (good.status_code, good.content) == (200, b"")
    assert eventually(lambda: requested(served) == set(QBO_COMPANIES))
    replay = post(
        served, "quickbooks", body, signature(QBO_VERIFIER, body)
    )  # harmless: still one request each
    assert replay.status_code == 200 and requested(served) == set(QBO_COMPANIES)


def test_quickbooks_unknown_realm_and_unreadable_bodies_are_ignored(served: Served):
    clear_requests(served)
    for body in (legacy("4620816365999999999"), b"not json", b'{"eventNotifications": "x"}', b"[1, {}]"):
        answer = post(served, "quickbooks", body, signature(QBO_VERIFIER, body))
        assert (answer.status_code, answer.content) == (200, b"")
    assert requested(served) == set()


def test_a_signed_notification_naming_nothing_readable_is_answered_200_and_logged(served: Served):
    """Signed, so the vendor is told 200 as SPEC asks; but a notification no sync comes of
    (a payload shape arsync cannot read) is a warning naming what was wrong, so an operator
    whose webhooks stop working hears of it. An intent-to-receive check is not one."""
    clear_requests(served)
    unreadable = {
        ("quickbooks", b"not json"): "not JSON",
        ("quickbooks", b'{"eventNotifications": "x"}'): "no `eventNotifications` list",
        ("quickbooks", b'{"eventNotifications": [{"realmId": null}]}'): "no notification names a `realmId`",
        ("quickbooks", b"[1, {}]"): "no CloudEvents event names an `intuitaccountid`",
        ("quickbooks", b'"text"'): "neither `eventNotifications` nor a CloudEvents array",
        ("xero", b"{}"): "no `events` list",
        ("xero", b'{"events": [{"tenantId": null}]}'): "no event names a `tenantId`",
        ("xero", b"\xff"): "not JSON",
    }
    log = served.config.with_name("serve.log")  # the server's own stderr: JSON lines
    seen = len(log.read_bytes())
    for (kind, body), _ in unreadable.items():
        key = QBO_VERIFIER if kind == "quickbooks" else XERO_KEY
        answer = post(served, kind, body, signature(key, body))
        assert (answer.status_code, answer.content) == (200, b"")
    intent = post(served, "xero", INTENT_TO_RECEIVE, signature(XERO_KEY, INTENT_TO_RECEIVE))
    body = legacy(served.qbo.realms[0])
    good = post(served, "quickbooks", body, signature(QBO_VERIFIER, body))
    assert (intent.status_code, good.status_code) == (200, 200)
    lines = [json.loads(line) for line in log.read_bytes()[seen:].splitlines() if line.startswith(b"{")]
    warned = [(line["kind"], line["problem"]) for line in lines if line["event"] == "webhook.unreadable"]
    assert warned == [(kind, problem) for (kind, _), problem in unreadable.items()]
    assert all(line["level"] == "warning" for line in lines if line["event"] == "webhook.unreadable")
    assert eventually(lambda: requested(served) == set(QBO_COMPANIES))


def test_xero_intent_to_receive_and_events(served: Served):
    clear_requests(served)
    good = post(served, "xero", INTENT_TO_RECEIVE, signature(XERO_KEY, INTENT_TO_RECEIVE))
    bad = post(served, "xero", INTENT_TO_RECEIVE, signature(XERO_KEY, INTENT_TO_RECEIVE + b" "))
    assert (good.status_code, good.content) == (200, b"")
    assert (bad.status_code, bad.content) == (401, b"")
    assert requested(served) == set()
    tenant = served.xero_tenant.upper()  # tenant ids are GUIDs: compared without case
    body = xero_events(tenant)
    assert post(served, "xero", body, signature(QBO_VERIFIER, body)).status_code == 401
    assert requested(served) == set()
    answer = post(served, "xero", body, signature(XERO_KEY, body))
    assert (answer.status_code, answer.content) == (200, b"")
    assert eventually(lambda: requested(served) == {"xero"})


def test_bodies_over_one_mebibyte_are_refused_while_read(served: Served):
    big = b"[" + b" " * (1_048_576) + b"]"
    declared = post(served, "quickbooks", big, signature(QBO_VERIFIER, big))
    assert declared.status_code == 413

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(17):
            yield b" " * 65_536

    with served.client() as client:
        streamed = client.post("/webhooks/xero", content=chunks(), headers={"x-xero-signature": "x"})
    assert streamed.status_code == 413
    exactly = b" " * 1_048_576
    assert post(served, "xero", exactly, signature(XERO_KEY, exactly)).status_code == 200
    # the refusal is JSON, as the OpenAPI document declares it
    assert declared.json() == streamed.json() == {"error": "body over 1048576 bytes"}
    with served.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    for kind in ("quickbooks", "xero"):
        answers = paths[f"/webhooks/{kind}"]["post"]["responses"]
        for status in ("404", "413"):  # JSON errors; 200, 401 and 503 have empty bodies
            schema = answers[status]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorOut"), (kind, status)


def test_a_burst_of_100_notifications_is_one_sync_per_company(served: Served):
    """All arrive before any worker starts the sync: one claim serves them, and nothing is left."""
    clear_requests(served)
    realm = served.qbo.realms[0]
    with served.client() as client:
        for n in range(100):
            body = legacy(realm).replace(b'"101"', f'"{100 + n}"'.encode())
            answer = client.post(
                "/webhooks/quickbooks",
                content=body,
                headers={"intuit-signature": signature(QBO_VERIFIER, body)},
            )
            assert answer.status_code == 200
    assert eventually(lambda: requested(served) == set(QBO_COMPANIES))
    engine = served.engine()
    try:
        now = datetime.now(UTC) + timedelta(seconds=1)
        claims = claim_due(engine, "w1", now=now, company_ids=COMPANIES, limit=10, ttl=timedelta(minutes=2))
        again = claim_due(engine, "w2", now=now, company_ids=COMPANIES, limit=10, ttl=timedelta(minutes=2))
        for claim in claims:
            release(
                engine, "w1", claim.company_id, next_at=now + timedelta(minutes=15), finished=now, status="ok"
            )
    finally:
        engine.dispose()
    assert sorted(c.company_id for c in claims if c.requested) == sorted(QBO_COMPANIES)
    assert [c for c in again if c.requested] == []


def test_a_notification_the_store_cannot_record_is_a_503_so_the_vendor_delivers_again(tmp_path, monkeypatch):
    """Never a 200 for requests that were not recorded: Intuit and Xero retry a non-2xx."""
    monkeypatch.setenv("TEST_QBO_VERIFIER", QBO_VERIFIER)
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "unmigrated.db"}"\n'
        '[http]\nquickbooks_verifier_token_env = "TEST_QBO_VERIFIER"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "4620816365"\nclient_id = "c"\n'
    )
    body = legacy("4620816365")
    with serving_in_thread(create_app(config)) as base:
        signed = {"intuit-signature": signature(QBO_VERIFIER, body)}
        answer = httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=signed)
    assert (answer.status_code, answer.content) == (503, b"")


def acme_store(tmp_path: Path, url: str) -> Path:
    """A configuration of one QuickBooks company with the webhook on, its store migrated and
    the company registered (as any arsync command that writes leaves it)."""
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n'
        '[http]\nquickbooks_verifier_token_env = "TEST_QBO_VERIFIER"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "4620816365"\nclient_id = "c"\n'
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "reminders", "plan", "--dry-run"]) == 0  # registers acme
    return config


@pytest.mark.timed
def test_a_notification_behind_a_locked_store_is_answered_within_the_second(tmp_path, monkeypatch):
    """SPEC section 12: a signed notification is answered within a second, whatever the work
    behind it. A store locked longer than the answer's wait gets a 503 in that second (the
    vendor delivers again), not a 200 for requests not recorded."""
    monkeypatch.setenv("TEST_QBO_VERIFIER", QBO_VERIFIER)
    url = f"sqlite:///{tmp_path / 'arsync.db'}"
    config = acme_store(tmp_path, url)
    body = legacy("4620816365")
    signed = {"intuit-signature": signature(QBO_VERIFIER, body)}
    locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    with serving_in_thread(create_app(config)) as base, httpx.Client(base_url=base) as client:
        assert client.get("/healthz").status_code == 200  # connected: the timing is the answer's
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the store for longer than a second
        began = time.monotonic()
        locked = client.post("/webhooks/quickbooks", content=body, headers=signed)
        took = time.monotonic() - began
        locker.execute("ROLLBACK")
    locker.close()
    assert (locked.status_code, locked.content) == (503, b"")
    assert took < 1.0


def test_a_notification_behind_a_locked_store_is_a_503_and_its_delivery_again_a_200(tmp_path, monkeypatch):
    """A 200 only once the requests are committed: a store locked past the answer's wait gets a
    503 (Intuit and Xero deliver again), and the delivery after the lock finds them recorded."""
    monkeypatch.setenv("TEST_QBO_VERIFIER", QBO_VERIFIER)
    monkeypatch.setattr("sync.http.webhooks.REQUEST_WAIT", 0.3)
    url = f"sqlite:///{tmp_path / 'arsync.db'}"
    config = acme_store(tmp_path, url)
    body = legacy("4620816365")
    signed = {"intuit-signature": signature(QBO_VERIFIER, body)}
    locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    with serving_in_thread(create_app(config)) as base:
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the store
        locked = httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=signed)
        locker.execute("ROLLBACK")
        again = httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=signed)
    locker.close()
    assert (locked.status_code, locked.content) == (503, b"")
    assert (again.status_code, again.content) == (200, b"")
    engine = make_engine(url)
    with engine.connect() as connection:
        requested = connection.execute(
            text("SELECT requested_at FROM sync_schedule WHERE company_id = 'acme'")
        )
        assert requested.scalar_one() is not None
    engine.dispose()


def test_a_sender_gone_mid_body_is_no_error_and_changes_nothing(tmp_path, monkeypatch):
    """A delivery whose connection drops before its body is in (a vendor's timeout): the app
    answers 400 to nobody and logs it as news, not as an unexpected error of its own."""
    monkeypatch.setenv("TEST_QBO_VERIFIER", QBO_VERIFIER)
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "arsync.db"}"\n'
        '[http]\nquickbooks_verifier_token_env = "TEST_QBO_VERIFIER"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "4620816365"\nclient_id = "c"\n'
    )
    app = create_app(config)
    incoming = [{"type": "http.request", "body": b'{"eventNoti', "more_body": True}]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/webhooks/quickbooks", "raw_path": b"/webhooks/quickbooks", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))  # raised ClientDisconnect through the app before
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400


@pytest.mark.timed
def test_webhooks_behind_a_locked_store_never_take_the_connections_the_portal_needs(
    pg_url, tmp_path, monkeypatch
):
    """PostgreSQL: another transaction holds the schedule's rows (a migration, an admin's
    session) while 35 deliveries arrive, as a vendor re-delivers its 503s. Each answer goes in
    the second (503); the recordings still waiting for the lock hold no more than a few of the
    server's connections, and give up after the server's store wait: `/readyz` and the
    portal's reads keep answering at once, and nothing waits on after the lock is gone."""
    from concurrent.futures import ThreadPoolExecutor

    from sync.http.context import RECORDINGS_AT_ONCE

    monkeypatch.setenv("TEST_QBO_VERIFIER", QBO_VERIFIER)
    monkeypatch.setattr("sync.http.app.STORE_WAIT", 2.0)
    config = acme_store(tmp_path, pg_url)
    body = legacy("4620816365")
    signed = {"intuit-signature": signature(QBO_VERIFIER, body)}
    app = create_app(config)
    locker = make_engine(pg_url)
    with serving_in_thread(app) as base, locker.connect() as held:
        held.execute(text("SELECT * FROM sync_schedule FOR UPDATE"))  # until rolled back
        with ThreadPoolExecutor(35) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=signed),
                    range(35),
                )
            )
        in_use = app.state.context.engine.pool.checkedout()
        began = time.monotonic()
        ready = httpx.get(f"{base}/readyz", timeout=60)
        took = time.monotonic() - began
        held.rollback()
        settled = time.monotonic() + 10
        while app.state.context.engine.pool.checkedout() and time.monotonic() < settled:
            time.sleep(0.05)
        left = app.state.context.engine.pool.checkedout()
    locker.dispose()
    assert {a.status_code for a in answers} == {503}
    assert in_use <= RECORDINGS_AT_ONCE, in_use
    assert ready.status_code == 200 and took < 1.0, (ready.text, took)
    assert left == 0


def test_the_document_declares_each_webhooks_body_and_signature_header(served: Served):
    """A sender or a test harness generated from /openapi.json learns the body formats and the
    signature header: the routes read the raw body themselves, so the document said nothing of
    either (no requestBody, no parameters)."""
    with served.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    realm, tenant = served.qbo.realms[0], served.xero_tenant
    sent = {
        ("quickbooks", "intuit-signature"): [legacy(realm), cloud_events(realm)],
        ("xero", "x-xero-signature"): [xero_events(tenant), INTENT_TO_RECEIVE],
    }
    for (kind, header), bodies in sent.items():
        operation = paths[f"/webhooks/{kind}"]["post"]
        headers = [(p["name"], p["in"], p["required"]) for p in operation.get("parameters", [])]
        assert headers == [(header, "header", True)], kind
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        for body in bodies:
            assert _accepts(schema, json.loads(body)), (kind, body[:60])
        assert not _accepts(schema, {"events": "x", "eventNotifications": "x"}), kind


def _accepts(schema: dict, value) -> bool:
    """Whether `value` holds to `schema` as far as its `oneOf`, types, required names,
    properties and items go (enough for the webhooks' declared bodies)."""
    if "oneOf" in schema:
        return sum(_accepts(option, value) for option in schema["oneOf"]) == 1
    types = schema.get("type")
    python = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float)}
    if types and not any(
        isinstance(value, python[t]) for t in ([types] if isinstance(types, str) else types)
    ):
        return False
    if isinstance(value, dict):
        return set(schema.get("required", [])) <= set(value) and all(
            _accepts(sub, value[name]) for name, sub in schema.get("properties", {}).items() if name in value
        )
    if isinstance(value, list):
        return all(_accepts(schema.get("items", {}), item) for item in value)
    return True
