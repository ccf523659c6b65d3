"""`arsync auth set-tokens` and `arsync auth connect` against the QuickBooks simulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import text

from connectors.simulators.generator import sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.crypto import SecretBox
from store.db import make_engine

KEY = "test-secret-key-for-arsync"


@pytest.fixture
def qbo():
    with QuickBooksSimulator(sample_company("quickbooks", today=datetime.now(UTC).date())) as sim:
        yield sim


def setup(tmp_path: Path, store_url: str, sim: QuickBooksSimulator) -> tuple[Path, dict]:
    config = tmp_path / "arsync.toml"
    config.write_text(f"""
[store]
url = "{store_url}"
[[companies]]
id = "acme"
name = "Acme"
[companies.connection]
kind = "quickbooks"
realm_id = "{sim.realms[0]}"
client_id = "{sim.tokens.client_id}"
client_secret_env = "ACME_SECRET"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
""")
    env = {**os.environ, "ACME_SECRET": sim.tokens.client_secret, "ARSYNC_SECRET_KEY": KEY}
    env.pop("ARSYNC_CONFIG", None)
    subprocess.run(
        [sys.executable, "-m", "sync", "--config", str(config), "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    return config, env


def stored_tokens(store_url: str) -> tuple[str, str, str]:
    engine = make_engine(store_url)
    with engine.connect() as c:
        row = c.execute(text("SELECT access_token, refresh_token, status FROM connections")).one()
    engine.dispose()
    return row


def test_set_tokens_are_encrypted_at_rest(tmp_path, store_url, qbo):
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sync",
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
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "tokens stored (encrypted)" in done.stdout
    access, refresh, status = stored_tokens(store_url)
    assert pair.access_token not in access and pair.refresh_token not in refresh
    assert SecretBox(KEY).open(refresh) == pair.refresh_token
    assert status == "ok"
    assert pair.refresh_token not in done.stdout + done.stderr


def start_connect(config: Path, env: dict, sim: QuickBooksSimulator) -> tuple[subprocess.Popen, str]:
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
            f"{sim.url}/connect/oauth2",
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
