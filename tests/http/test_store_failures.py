"""The portal API when the store, not the request, is at fault: 503 in JSON, like `/readyz`
and the webhooks, on a connection that stays usable; and text the store cannot hold is the
request's fault (422), never a 500."""

from __future__ import annotations

import contextlib
import io
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import NullPool, create_engine, text

from store.db import make_engine
from sync.cli import main
from sync.config import load_config
from sync.http.app import create_app
from sync.http.steady import STEADY
from tests.foundation.schema import migrate
from tests.http.conftest import Served, serving_in_thread


def one_company(tmp_path: Path, url: str) -> Path:
    """A configuration of one QuickBooks company, `acme`, over the store at `url`."""
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\ntimezone = "UTC"\nportal_url = "https://portal.example"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )
    return config


def test_an_unmigrated_store_answers_503_and_keeps_the_connection(tmp_path: Path):
    sqlite3.connect(tmp_path / "empty.db").close()  # a file with no schema
    config = one_company(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(config=load_config(config))
    with (
        serving_in_thread(app) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer ak_000000000000_{'x' * 43}"}
        ) as client,
    ):
        answers = [
            client.get("/v1/companies/acme/customers/1/invoices"),
            client.post("/v1/companies/acme/request-access", json={"email": "a@b.example"}),
            client.get("/v1/companies/acme/customers/1/balance"),
        ]
    assert [(a.status_code, a.json()) for a in answers] == [(503, {"error": "store unavailable"})] * 3
    assert answers[0].headers["retry-after"] == "5"


def test_a_nul_character_is_the_requests_fault_naming_the_parameter_on_every_store(served: Served):
    """PostgreSQL cannot hold a NUL and SQLite stored it: the same 422 on both, before any
    store sees it, naming the parameter (and after the key check, as all malformed input)."""
    with served.client("qbo") as client, served.client("qbo_single") as other:
        answers = [
            client.get("/v1/companies/qbo/customers/a%00b/invoices"),
            client.get("/v1/companies/qbo/customers/%00/balance"),
            client.get("/v1/companies/qbo/customers/%00/statement"),
            client.get("/v1/companies/qbo/accounts", params={"email": "a\x00b@x.example"}),
            client.post("/v1/companies/qbo/request-access", json={"email": "a\u0000b@x.example"}),
            other.post("/v1/companies/qbo/request-access", json={"email": "a\u0000b@x.example"}),
        ]
    nul = "must not contain NUL characters"
    assert [(a.status_code, a.json()["error"]) for a in answers] == [
        (422, f"path parameter 'ref': {nul}"),
        (422, f"path parameter 'ref': {nul}"),
        (422, f"path parameter 'ref': {nul}"),
        (422, f"query parameter 'email': {nul}"),
        (422, f"body field 'email': {nul}"),
        (404, "no such company"),
    ]


def migrated_with_key(tmp_path: Path, url: str) -> tuple[Path, str]:
    """`one_company` over a migrated store, and an API key of `acme`."""
    config = one_company(tmp_path, url)
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--config", str(config), "portal", "api-key", "create", "acme"]) == 0
    return config, printed.getvalue().splitlines()[-1]


def test_a_request_behind_a_locked_store_answers_503_after_the_servers_own_wait(tmp_path: Path, monkeypatch):
    """A portal request waits `STORE_WAIT` for SQLite's one writer, not a sync's 30 s: its
    answer comes well within the server's graceful stop, and says the store is busy."""
    monkeypatch.setattr("sync.http.app.STORE_WAIT", 0.5)
    url = f"sqlite:///{tmp_path / 'arsync.db'}"
    config, key = migrated_with_key(tmp_path, url)
    locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    app = create_app(config=load_config(config))
    with (
        serving_in_thread(app) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the store
        began = time.monotonic()
        locked = client.post("/v1/companies/acme/request-access", json={"email": "a@b.example"})
        waited = time.monotonic() - began
        locker.execute("ROLLBACK")
        free = client.post("/v1/companies/acme/request-access", json={"email": "a@b.example"})
    locker.close()
    assert (locked.status_code, locked.json()) == (503, {"error": "store unavailable"})
    assert 0.4 < waited < 5  # the server's wait, not SQLite's 30 s of a sync
    assert free.status_code == 202


def test_a_store_behind_the_code_answers_503_on_every_route_and_stores_nothing(tmp_path: Path):
    """`/readyz` said 503 for a store at an older revision (the code upgraded before `arsync
    db upgrade` ran), while the portal routes answered from the old schema and request access
    wrote to it. Every route now says what `/readyz` says; the store keeps what it held."""
    url = f"sqlite:///{tmp_path / 'arsync.db'}"
    config, key = migrated_with_key(tmp_path, url)
    engine = make_engine(url)
    migrate(engine, command.downgrade, "0013")
    engine.dispose()
    requests = "SELECT count(*) FROM access_requests"
    before = sqlite3.connect(tmp_path / "arsync.db").execute(requests).fetchone()
    with (
        serving_in_thread(create_app(config=load_config(config))) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        ready = client.get("/readyz")
        answers = [
            client.get("/v1/companies/acme/customers/1/invoices"),
            client.get("/v1/companies/acme/customers/1/balance"),
            client.post("/v1/companies/acme/request-access", json={"email": "a@b.example"}),
            client.post("/v1/companies/acme/invitations/accept", json={"token": "x" * 43}),
        ]
    assert ready.status_code == 503 and "run `arsync db upgrade`" in ready.json()["error"]
    assert [(a.status_code, a.json()) for a in answers] == [(503, {"error": "store unavailable"})] * 4
    assert sqlite3.connect(tmp_path / "arsync.db").execute(requests).fetchone() == before


def test_malformed_input_on_an_unmigrated_store_is_still_a_503(tmp_path: Path):
    """The key check that comes before a malformed body's 422 reads the store too."""
    sqlite3.connect(tmp_path / "empty.db").close()  # a file with no schema
    config = one_company(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    with serving_in_thread(create_app(config=load_config(config))) as base:
        answer = httpx.post(
            f"{base}/v1/companies/acme/request-access",
            content=b"{email",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer ak_000000000000_{'x' * 43}",
            },
        )
    assert (answer.status_code, answer.json()) == (503, {"error": "store unavailable"})


def test_an_unexpected_error_is_a_json_500_in_its_time_on_a_connection_kept(tmp_path: Path, monkeypatch):
    """A bug is still answered like everything else: one JSON line, no sooner than the route's
    steady time (an early 500 told its cause apart), and the keep-alive connection stays."""

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    config, key = migrated_with_key(tmp_path, f"sqlite:///{tmp_path / 'arsync.db'}")
    monkeypatch.setattr("sync.http.portal.record_access_request", broken)
    connections: list[object] = []
    with (
        serving_in_thread(create_app(config=load_config(config))) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        began = time.monotonic()
        failed = client.post("/v1/companies/acme/request-access", json={"email": "a@b.example"})
        took = time.monotonic() - began
        connections.append(failed.extensions["network_stream"])
        after = client.get("/healthz")
        connections.append(after.extensions["network_stream"])
    assert (failed.status_code, failed.json()) == (500, {"error": "internal error"})
    assert took >= STEADY
    assert after.status_code == 200 and connections[0] is connections[1]


def test_a_missing_sqlite_store_is_unavailable_and_never_created(tmp_path: Path):
    """As the CLI's reading commands, the server leaves a store file that is not there alone
    (a mistyped or relative path made an empty store): unavailable until `arsync db upgrade`
    makes it, then served without a restart."""
    store = tmp_path / "typo-arsync.db"
    config = one_company(tmp_path, f"sqlite:///{store}")
    bad_key = {"Authorization": f"Bearer ak_000000000000_{'x' * 43}"}
    with serving_in_thread(create_app(config=load_config(config))) as base:
        ready = httpx.get(f"{base}/readyz")
        invoices = httpx.get(f"{base}/v1/companies/acme/customers/1/invoices", headers=bad_key)
        metrics = httpx.get(f"{base}/metrics")
        created = sorted(p.name for p in tmp_path.glob("typo-arsync.db*"))
        assert main(["--config", str(config), "db", "upgrade"]) == 0
        ready_after = httpx.get(f"{base}/readyz")
        invoices_after = httpx.get(f"{base}/v1/companies/acme/customers/1/invoices", headers=bad_key)
    assert created == []
    assert (ready.status_code, metrics.status_code) == (503, 503)
    assert ready.json()["error"] == f"no store at {store}; run `arsync db upgrade`"
    assert (invoices.status_code, invoices.json()) == (503, {"error": "store unavailable"})
    assert (ready_after.status_code, invoices_after.status_code) == (200, 401)


@pytest.mark.timed
def test_health_answers_at_once_while_every_handler_waits_for_a_locked_store(tmp_path: Path, monkeypatch):
    """A liveness probe (typically a 1 s timeout) must not fail while the process is well and
    only the store is busy: /healthz needs none of the handler threads the waiting requests hold."""
    monkeypatch.setattr("sync.http.app.STORE_WAIT", 3.0)
    url = f"sqlite:///{tmp_path / 'arsync.db'}"
    config, key = migrated_with_key(tmp_path, url)
    locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    with (
        serving_in_thread(create_app(config=load_config(config))) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client,
        ThreadPoolExecutor(max_workers=45) as pool,
    ):
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the store
        waiting = [
            pool.submit(client.post, "/v1/companies/acme/request-access", json={"email": f"{n}@b.example"})
            for n in range(45)  # more than the 40 handler threads
        ]
        time.sleep(1.0)  # they are all in, and waiting
        began = time.monotonic()
        health = httpx.get(f"{base}/healthz", timeout=10)
        took = time.monotonic() - began
        locker.execute("ROLLBACK")
        statuses = {future.result().status_code for future in waiting}
    locker.close()
    assert health.status_code == 200
    assert took < 0.5, took
    assert statuses <= {202, 503}


def test_a_postgresql_that_accepts_and_never_answers_is_a_503_after_the_servers_wait(
    tmp_path: Path, monkeypatch
):
    """A PostgreSQL host that takes the connection and says nothing (a stuck server, a proxy
    whose backend is gone): connecting had no time limit, so `/readyz` and every portal
    request waited for ever, each holding one of the server's handler threads. Now the
    connection attempt gives up after the server's store wait, and the answer is 503."""
    monkeypatch.setattr("sync.http.app.STORE_WAIT", 2.0)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    taker = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    taker.start()
    url = f"postgresql+psycopg://arsync@127.0.0.1:{listener.getsockname()[1]}/test"
    try:
        with serving_in_thread(create_app(one_company(tmp_path, url))) as base:
            began = time.monotonic()
            ready = httpx.get(f"{base}/readyz", timeout=15)
            took = time.monotonic() - began
    finally:
        for connection in [*accepted, listener]:
            connection.close()
    assert (ready.status_code, ready.json()["status"]) == (503, "unavailable")
    assert took < 5, took


def test_a_connect_timeout_the_store_url_sets_is_kept(pg_url: str):
    """The server's bound on connecting is a default: an operator's own `connect_timeout` in
    `store.url` (a slow link to a distant server) is what libpq gets."""
    engine = make_engine(f"{pg_url}&connect_timeout=9", bounded=True, busy_timeout=1.0)
    try:
        with engine.connect() as connection:
            dsn = connection.connection.dbapi_connection.info.dsn
    finally:
        engine.dispose()
    assert "connect_timeout=9" in dsn.split()


@contextlib.contextmanager
def stalled(url: str, *tables: str) -> Iterator[None]:
    """Each of `tables` (in `url`'s schema) read through a view that takes a minute: a
    statement the server takes and does not finish, waiting for no lock, so `lock_timeout`
    never ends it (a stalled disk, a plan gone wrong). Sleeps left behind are cancelled."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        for table in tables:
            connection.execute(text(f"ALTER TABLE {table} RENAME TO {table}_stalled"))
            connection.execute(
                text(f"CREATE VIEW {table} AS SELECT s.* FROM {table}_stalled s, pg_sleep(60)")
            )
    try:
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"SELECT pg_cancel_backend(pid) FROM ({STALLED_READERS}) r"))
        admin.dispose()


# the backends still reading a stalled table: their statements have not ended
STALLED_READERS = """SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE c.relname LIKE '%\\_stalled' AND c.relnamespace = current_schema()::regnamespace
AND l.pid <> pg_backend_pid()"""


def test_a_statement_postgresql_never_finishes_is_a_503_after_the_servers_wait(
    tmp_path: Path, pg_url: str, monkeypatch
):
    """A PostgreSQL that takes the connection and a statement, then never answers it: each
    request (a portal read, /readyz, /metrics) waited for ever, holding a handler thread and
    a connection. Each statement of the server now ends after its bound, and the answer is
    the store's 503; on the store, nothing of theirs is still running."""
    monkeypatch.setattr("sync.http.app.STORE_WAIT", 0.5)
    monkeypatch.setattr("sync.http.app.METRICS_STATEMENT_WAIT", 1.0)
    config, key = migrated_with_key(tmp_path, pg_url)
    with (
        serving_in_thread(create_app(config=load_config(config))) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client,
        stalled(pg_url, "alembic_version", "api_keys", "sync_runs"),
    ):
        began = time.monotonic()
        answers = [client.get(path) for path in ("/v1/companies/acme/accounts?email=a@b.example", "/readyz")]
        metrics = client.get("/metrics")
        took = time.monotonic() - began
        admin = create_engine(pg_url, poolclass=NullPool)
        with admin.connect() as connection:
            still = connection.execute(text(STALLED_READERS)).all()
        admin.dispose()
    assert [(a.status_code, a.json().get("error", "")[:17]) for a in answers] == [
        (503, "store unavailable"),
        (503, "store unreachable"),
    ]
    assert (metrics.status_code, metrics.json()) == (503, {"error": "store unavailable: OperationalError"})
    assert took < 4, took
    assert still == []


@pytest.mark.parametrize(
    ("options", "shown"), [("", "500ms"), ("%20-cstatement_timeout%3D9s", "9s")], ids=["default", "its own"]
)
def test_serves_statement_bound_is_the_wait_unless_the_store_url_sets_its_own(
    pg_url: str, options: str, shown: str
):
    """As `connect_timeout`: an operator's own statement_timeout in `store.url`'s `options`
    (a report that runs long on purpose) is what the session keeps."""
    engine = make_engine(f"{pg_url}{options}", bounded=True, busy_timeout=0.5)
    try:
        with engine.connect() as connection:
            kept = connection.scalar(text("SHOW statement_timeout"))
    finally:
        engine.dispose()
    assert kept == shown
