"""`arsync auth set-tokens` and `arsync auth connect` against the QuickBooks and Xero simulators."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select, text

from connectors.simulators.generator import generate_company, sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero import XeroSimulator
from store.crypto import SecretBox
from store.db import make_engine, upgrade
from store.tables import CompanyConnection
from sync.cli import main

KEY = "test-secret-key-for-arsync"


@dataclass
class Done:
    """A finished `arsync` run, in the shape of `subprocess.CompletedProcess`."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, env: dict, argv: list[str]
) -> Done:
    """`arsync ARGV...` in this process with exactly the environment `env` a subprocess would be
    given (arsync reads ARSYNC_SECRET_KEY and the client secrets per command, not at start):
    a Python start and arsync's imports saved, the same exit code, output and store effect."""
    with monkeypatch.context() as patch:
        for name in set(os.environ) - set(env):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        capsys.readouterr()
        code = main(argv)
        captured = capsys.readouterr()
    return Done(code, captured.out, captured.err)


@pytest.fixture
def qbo():
    with QuickBooksSimulator(sample_company("quickbooks", today=datetime.now(UTC).date())) as sim:
        yield sim


def setup(tmp_path: Path, store_url: str, sim: QuickBooksSimulator) -> tuple[Path, dict]:
    connection = f'''kind = "quickbooks"
realm_id = "{sim.realms[0]}"
api_base_url = "{sim.api_url}"'''
    return configured(tmp_path, store_url, sim, connection)


def configured(tmp_path: Path, store_url: str, sim, connection: str) -> tuple[Path, dict]:
    """A migrated store and a config with company acme on `sim`, its `connection` lines given."""
    config = tmp_path / "arsync.toml"
    config.write_text(f"""
[store]
url = "{store_url}"
[[companies]]
id = "acme"
name = "Acme"
[companies.connection]
{connection}
client_id = "{sim.tokens.client_id}"
client_secret_env = "ACME_SECRET"
token_url = "{sim.token_url}"
""")
    env = {**os.environ, "ACME_SECRET": sim.tokens.client_secret, "ARSYNC_SECRET_KEY": KEY}
    env.pop("ARSYNC_CONFIG", None)
    engine = make_engine(store_url)  # in this process: `db upgrade` has tests of its own
    upgrade(engine)
    engine.dispose()
    return config, env


def stored_tokens(store_url: str) -> tuple[str, str, str]:
    engine = make_engine(store_url)
    with engine.connect() as c:
        row = c.execute(text("SELECT access_token, refresh_token, status FROM connections")).one()
    engine.dispose()
    return row


def test_set_tokens_are_encrypted_at_rest(tmp_path, store_url, qbo, monkeypatch, capsys):
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    done = run_in_process(
        monkeypatch,
        capsys,
        env,
        [
            "--config",
            str(config),
            "auth",
            "set-tokens",
            "acme",
            "--access-token",
            pair.access_token,
            "--refresh-token",
            pair.refresh_token,
        ],
    )
    assert done.returncode == 0, done.stderr
    assert "tokens stored (encrypted)" in done.stdout
    access, refresh, status = stored_tokens(store_url)
    assert pair.access_token not in access and pair.refresh_token not in refresh
    assert SecretBox(KEY).open(refresh) == pair.refresh_token
    assert status == "ok"
    assert pair.refresh_token not in done.stdout + done.stderr


def start_connect(
    config: Path, env: dict, sim: QuickBooksSimulator | XeroSimulator, authorize_url: str | None = None
) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync",
            "--config",
            str(config),
            "auth",
            "connect",
            "acme",
            "--authorize-url",
            authorize_url or f"{sim.url}/connect/oauth2",
            "--no-browser",
            "--timeout",
            "60",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if line.startswith("http"):
            return process, line.strip()
    raise AssertionError(process.stderr.read())


def test_connect_runs_the_authorization_code_flow(tmp_path, store_url, qbo):
    config, env = setup(tmp_path, store_url, qbo)
    process, url = start_connect(config, env, qbo)
    assert parse_qs(urlsplit(url).query)["redirect_uri"][0].startswith("http://127.0.0.1:")
    answer = requests.get(url, timeout=30)  # the browser: consent page -> redirect to arsync's listener
    assert answer.status_code == 200 and "authorization received" in answer.text
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "acme: connected (encrypted)" in out
    access, _, status = stored_tokens(store_url)
    assert status == "ok"
    assert qbo.tokens.check(SecretBox(KEY).open(access))


def test_connect_rejects_a_forged_redirect(tmp_path, store_url, qbo):
    config, env = setup(tmp_path, store_url, qbo)
    process, url = start_connect(config, env, qbo)
    redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    requests.get(redirect, params={"code": qbo.tokens.authorize(redirect), "state": "forged"}, timeout=30)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "state mismatch" in err
    assert "Traceback" not in err
    assert stored_tokens(store_url)[0] is None
    assert datetime.now(UTC)  # the process ended on its own, well before its timeout


def test_connect_for_a_kind_without_a_provider_says_what_to_configure(tmp_path, store_url, qbo):
    """A connector kind that brings no OAuth provider: a usage error (exit 2) naming the kind,
    `connection.token_url` and `--authorize-url`, never a traceback."""
    config, env = setup(tmp_path, store_url, qbo)
    config.write_text(config.read_text().replace('kind = "quickbooks"', 'kind = "nosuch"'))
    done = subprocess.run(
        [sys.executable, "-m", "sync", "--config", str(config), "auth", "connect", "acme", "--no-browser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "'nosuch'" in done.stderr and "connection.token_url" in done.stderr
    assert "--authorize-url" in done.stderr and "Traceback" not in done.stderr


def test_connect_on_a_taken_port_says_so_in_one_line(tmp_path, store_url, qbo):
    config, env = setup(tmp_path, store_url, qbo)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sync", "--config", str(config), "auth", "connect", "acme"]
            + ["--no-browser", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: cannot listen for the redirect on 127.0.0.1:{port}")
    )
    assert "Traceback" not in done.stderr


# -- Xero: which organisations the consent covers (the store plays no part: SQLite only) ----


@pytest.fixture
def xero():
    today = datetime.now(UTC).date()
    books = [
        sample_company("xero", today=today),
        generate_company("xero", seed=8, customers=3, invoices=5, today=today),
    ]
    with XeroSimulator(books) as sim:
        yield sim


def xero_setup(tmp_path: Path, store_url: str, sim: XeroSimulator, tenant_id: str) -> tuple[Path, dict]:
    connection = f'''kind = "xero"
tenant_id = "{tenant_id}"
api_base_url = "{sim.accounting_url}"'''
    return configured(tmp_path, store_url, sim, connection)


@pytest.mark.parametrize("configured", ["first", "elsewhere"])
def test_connecting_xero_lists_the_organisations_the_consent_covers(tmp_path, sqlite_url, xero, configured):
    tenant_id = xero.tenants[0] if configured == "first" else "00000000-0000-0000-0000-000000000000"
    config, env = xero_setup(tmp_path, sqlite_url, xero, tenant_id)
    process, url = start_connect(config, env, xero, xero.authorize_url)
    assert requests.get(url, timeout=30).status_code == 200  # the browser: consent, then the redirect
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    first, second = (xero.company(tenant) for tenant in xero.tenants)
    assert "acme: connected (encrypted)\nXero organisations this connection may read:\n" in out
    assert f"  {first.id}  {first.name}" in out and f"  {second.id}  {second.name}\n" in out
    if configured == "first":
        assert f"  {first.id}  {first.name}  (connection.tenant_id)\n" in out and "note:" not in out
    else:
        assert f"note: connection.tenant_id {tenant_id!r} is not among them; set it to one of these" in out


def test_connecting_xero_when_the_organisations_cannot_be_listed_still_stores_the_tokens(
    tmp_path, sqlite_url, xero
):
    config, env = xero_setup(tmp_path, sqlite_url, xero, xero.tenants[0])
    xero.faults.add("/Connections", "500")  # the path as xero-python writes it
    process, url = start_connect(config, env, xero, xero.authorize_url)
    assert requests.get(url, timeout=30).status_code == 200
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in err, err
    assert (
        "acme: connected (encrypted)\nnote: Xero did not list the connected organisations: HTTP 500;" in out
    )
    assert stored_tokens(sqlite_url)[2] == "ok"


def test_connect_with_a_code_the_provider_refuses_says_so_in_one_line(tmp_path, store_url, qbo):
    """The redirect is genuine (its state matches) but the token endpoint refuses the code
    (used, expired, or the redirect_uri does not match): a clear failure, exit 1, no
    "unexpected error" and nothing stored."""
    config, env = setup(tmp_path, store_url, qbo)
    process, url = start_connect(config, env, qbo)
    query = parse_qs(urlsplit(url).query)
    redirect, state = query["redirect_uri"][0], query["state"][0]
    requests.get(redirect, params={"code": "sim-code-never-issued", "state": state}, timeout=30)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "unexpected error" not in err and "Traceback" not in err
    assert "authorization code" in err
    assert stored_tokens(store_url)[0] is None


def test_connect_is_not_stalled_by_an_idle_connection_to_its_listener(tmp_path, store_url, qbo):
    """Browsers open speculative connections they may never send a request on: one such idle
    connection to the redirect listener must not keep the real redirect from being served."""
    config, env = setup(tmp_path, store_url, qbo)
    process, url = start_connect(config, env, qbo)
    redirect = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0])
    with socket.create_connection((redirect.hostname, redirect.port)):  # the idle preconnect
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 200 and "authorization received" in answer.text
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "acme: connected (encrypted)" in out


def test_a_sync_with_now_stores_token_lifetimes_of_the_real_clock(
    tmp_path, store_url, qbo, monkeypatch, capsys
):
    """`arsync sync --now` replays business time; token lifetimes are real. A refresh made by
    such a run stores when the tokens really expire: expiry times years ahead would have the
    daemon's keep-alive leave a refresh token to die unused, and every other process take an
    expired access token for a valid one."""
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    base = ["--config", str(config)]
    tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
    stored = run_in_process(
        monkeypatch, capsys, env, [*base, "auth", "set-tokens", "acme", *tokens, "--expires-in", "0"]
    )
    assert stored.returncode == 0, stored.stderr  # what check=True checked
    done = run_in_process(
        monkeypatch, capsys, env, [*base, "sync", "acme", "--now", "2030-01-01T00:00:00+00:00"]
    )
    assert done.returncode == 0, done.stderr
    assert qbo.tokens.refreshes == 1
    engine = make_engine(store_url)
    with engine.connect() as c:
        columns = (CompanyConnection.access_expires_at, CompanyConnection.refresh_expires_at)
        access, refresh = c.execute(select(*columns)).one()
    engine.dispose()
    now = datetime.now(UTC)
    assert now < access <= now + timedelta(hours=2)
    assert now < refresh <= now + timedelta(days=102)


@pytest.mark.parametrize("bad", ["", "tok en", "tok\nen"], ids=["empty", "space", "line-break"])
def test_set_tokens_refuses_a_token_no_provider_issues_and_keeps_the_stored_ones(
    tmp_path, store_url, bad, monkeypatch, capsys
):
    # `--refresh-token "$REFRESH"` with the variable unset replaced the working tokens
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[[companies]]\nid = "acme"\nname = "Acme"\n'
        '[companies.connection]\nkind = "quickbooks"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_SECRET_KEY")}

    def arsync(*args: str) -> Done:
        return run_in_process(monkeypatch, capsys, env, ["--config", str(config), *args])

    assert arsync("db", "upgrade").returncode == 0
    assert (
        arsync("auth", "set-tokens", "acme", "--access-token", "a1", "--refresh-token", "r1").returncode == 0
    )
    refused = arsync("auth", "set-tokens", "acme", "--access-token", "a2", "--refresh-token", bad)
    assert refused.returncode == 2
    assert "--refresh-token" in refused.stderr and "the stored tokens are unchanged" in refused.stderr
    engine = make_engine(store_url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT access_token, refresh_token FROM connections")).one()
    engine.dispose()
    assert tuple(stored) == ("plain:a1", "plain:r1")  # no ARSYNC_SECRET_KEY: stored as given
