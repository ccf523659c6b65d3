"""`arsync serve` as a real process on loopback, over the end-to-end books synced into a store.

One server per backend (SQLite, PostgreSQL) for the tests of this package: starting a Python process
costs seconds on a busy 2-core machine, so the tests share it and each one asserts its own
outcome. The simulators' books give four companies: three read the same QuickBooks realm
(`qbo`, `qbo_single`, `qbo_all`), one a Xero tenant (`xero`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero import XeroSimulator
from store.db import make_engine
from sync.cli import main
from tests.conftest import PG_BASE, _pg_available
from tests.endtoend.books import quickbooks_books, xero_books
from tests.endtoend.conftest import QBO_COMPANIES, company_block

QBO_VERIFIER = "intuit-verifier-token-for-tests"
XERO_KEY = "xero-webhook-key-for-tests"
COMPANIES = [*QBO_COMPANIES, "xero"]


@dataclass
class Served:
    base: str
    config: Path
    store_url: str
    qbo: QuickBooksSimulator
    xero: XeroSimulator
    process: subprocess.Popen
    keys: dict[str, str] = field(default_factory=dict)
    xero_tenant: str = ""

    def client(self, company: str | None = None, *, key: str | None = None) -> httpx.Client:
        """A client carrying `company`'s key (or `key`, or none)."""
        key = key or (self.keys[company] if company else None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10)

    def cli(self, *args: str) -> tuple[int, str, str]:
        return run_cli(self.config, *args)

    def engine(self):
        return make_engine(self.store_url)

    def config_mailing_to(self, smtp_port: int, path: Path) -> Path:
        """This configuration with mail sent to an SMTP server on loopback, written to `path`."""
        mail = (
            f'[mail]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\n'
            'smtp_security = "none"\n'
        )
        path.write_text(self.config.read_text().replace("[http]\n", mail + "[http]\n"))
        return path

    def scalar(self, sql: str, **params):
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return connection.scalar(text(sql), params)
        finally:
            engine.dispose()


@contextlib.contextmanager
def serving_in_thread(app, **options) -> Iterator[str]:
    """`app` served by uvicorn on loopback in this process (a thread); its base URL.

    `options` go to uvicorn's `Config` (`root_path="/api"`, say)."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        while not server.started and thread.is_alive():
            thread.join(0.05)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def run_cli(config: Path, *args: str) -> tuple[int, str, str]:
    """`arsync --config CONFIG ARGS` in this process, with its output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config), *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def served_store_url(request, tmp_path_factory) -> Iterator[str]:
    """A store URL for this package: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'arsync.db'}"
        return
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required in CI but 127.0.0.1:5432/test is unreachable")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def write_config(path: Path, store_url: str, qbo, xero, qbo_realm: str, xero_tenant: str) -> None:
    blocks = [
        company_block(cid, "quickbooks", qbo, extra, realm=qbo_realm) for cid, extra in QBO_COMPANIES.items()
    ]
    blocks.append(company_block("xero", "xero", xero, {"multi_account_portal": False}, tenant=xero_tenant))
    path.write_text(
        f'[store]\nurl = "{store_url}"\n[log]\nlevel = "warning"\n'
        '[http]\nquickbooks_verifier_token_env = "TEST_QBO_VERIFIER"\n'
        'xero_webhook_key_env = "TEST_XERO_KEY"\n' + "".join(blocks)
    )


def start_server(config: Path, env: dict[str, str]) -> subprocess.Popen:
    """`arsync serve --port 0` as a process (it starts even before the store is migrated).

    Its stderr goes to a file next to the config, so a chatty server never blocks on a pipe.
    """
    log = config.with_name("serve.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "sync", "--config", str(config), "serve", "--port", "0"],
        env=env,
        stderr=log,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def wait_until_serving(process: subprocess.Popen, config: Path) -> str:
    """The server's base URL once /healthz answers."""
    log = config.with_name("serve.log")
    deadline = time.monotonic() + 30
    base = ""
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"listening on (http://\S+)", log.read_text())
        base = found.group(1) if found else ""
        with contextlib.suppress(httpx.TransportError):
            if base and httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return base
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"arsync serve did not answer /healthz within 30 s: {log.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen, config: Path) -> tuple[int, str, float]:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    return process.returncode, config.with_name("serve.log").read_text(), time.monotonic() - began


@pytest.fixture(scope="package")
def served(served_store_url: str, tmp_path_factory) -> Iterator[Served]:
    today = datetime.now(UTC).date()
    qbo_books, x_books = quickbooks_books(today), xero_books(today)
    with (
        pytest.MonkeyPatch.context() as patch,
        QuickBooksSimulator(qbo_books) as qbo,
        XeroSimulator([x_books]) as xero,
    ):
        patch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
        patch.delenv("ARSYNC_CONFIG", raising=False)
        patch.setenv("E2E_QUICKBOOKS_SECRET", qbo.tokens.client_secret)
        patch.setenv("E2E_XERO_SECRET", xero.tokens.client_secret)
        patch.setenv("TEST_QBO_VERIFIER", QBO_VERIFIER)
        patch.setenv("TEST_XERO_KEY", XERO_KEY)
        config = tmp_path_factory.mktemp("served") / "arsync.toml"
        write_config(config, served_store_url, qbo, xero, qbo_books.id, x_books.id)
        # Without the client secrets: serving needs only the webhook keys (the CLI set-up
        # below runs in this process, with them).
        env = {k: v for k, v in os.environ.items() if k not in ("E2E_QUICKBOOKS_SECRET", "E2E_XERO_SECRET")}
        process = start_server(config, env)  # its start-up overlaps the set-up below
        try:
            keys = prepare_store(config, qbo, xero)
            base = wait_until_serving(process, config)
            yield Served(base, config, served_store_url, qbo, xero, process, keys, x_books.id)
        finally:
            code, err, seconds = stop_server(process, config)
        assert code == 0, err[-2000:]
        assert seconds < 10


def prepare_store(config: Path, qbo: QuickBooksSimulator, xero: XeroSimulator) -> dict[str, str]:
    """Migrate, connect and sync every company; one API key each (returned by company)."""
    assert run_cli(config, "db", "upgrade")[0] == 0
    for cid in COMPANIES:
        pair = (xero if cid == "xero" else qbo).tokens.issue()
        code, _, err = run_cli(
            config, "auth", "set-tokens", cid, "--access-token", pair.access_token,
            "--refresh-token", pair.refresh_token, "--expires-in", "1800",
        )  # fmt: skip
        assert code == 0, err
    code, out, err = run_cli(config, "sync", "--json")
    assert code == 0 and all(json.loads(line)["status"] == "ok" for line in out.splitlines()), err
    keys = {}
    for cid in COMPANIES:
        code, out, err = run_cli(config, "portal", "api-key", "create", cid)
        assert code == 0, err
        keys[cid] = out.splitlines()[-1]
    return keys
