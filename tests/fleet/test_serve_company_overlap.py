"""SPEC §11: an id may not be in both the file and the store (exit 2 naming it). `arsync serve`
refuses to start on such a pair as every command does; a server already running when an
operator adds a company its own file also has keeps serving the others (the last companies
it read, as `arsync run` does), and one that never read them says so on `/readyz` (503) and
answers 503, not 500, everywhere else."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

import sync.http.context
from sync.config import load_config
from sync.http.app import create_app
from tests.fleet.conftest import company_toml
from tests.http.conftest import serving_in_thread

BOTH = "company 'dup' is both in"


def _serve_file(cli, tmp_path):
    """A second configuration (another server's) whose file also holds 'dup'."""
    other = tmp_path / "serve.toml"
    other.write_text(f'[store]\nurl = "{cli.store_url}"\n' + company_toml("acme") + company_toml("dup"))
    return other


def _add_dup(cli, tmp_path) -> None:
    extra = tmp_path / "dup.toml"
    extra.write_text(company_toml("dup"))
    assert cli("company", "add", str(extra))[0] == 0


def test_serve_refuses_to_start_on_an_id_both_in_its_file_and_the_store(cli, tmp_path):
    _add_dup(cli, tmp_path)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sync", "--config", str(_serve_file(cli, tmp_path)), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert BOTH in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert time.monotonic() - started < 30


def test_a_server_that_never_read_its_companies_says_why_with_503s(cli, tmp_path):
    code, out, err = cli("portal", "api-key", "create", "acme")
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    _add_dup(cli, tmp_path)
    app = create_app(config=load_config(_serve_file(cli, tmp_path), require_secrets=False))
    with serving_in_thread(app) as base:
        ready = httpx.get(f"{base}/readyz")
        metrics = httpx.get(f"{base}/metrics")
        portal = httpx.get(
            f"{base}/v1/companies/acme/customers/1/invoices", headers={"Authorization": f"Bearer {key}"}
        )
    assert ready.status_code == 503 and BOTH in ready.json()["error"], ready.text
    assert metrics.status_code == 503 and BOTH in metrics.json()["error"], metrics.text
    assert portal.status_code == 503 and BOTH in portal.json()["error"], portal.text


def test_a_running_server_keeps_serving_the_others_when_an_overlapping_id_is_added(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(sync.http.context, "COMPANIES_FRESH_FOR", 0.0)  # read them again at every request
    app = create_app(config=load_config(_serve_file(cli, tmp_path), require_secrets=False))
    with serving_in_thread(app) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        _add_dup(cli, tmp_path)
        ready = httpx.get(f"{base}/readyz")
        metrics = httpx.get(f"{base}/metrics")
        assert app.state.context.problem is not None and BOTH in app.state.context.problem
    assert ready.status_code == 200, ready.text
    assert metrics.status_code == 200 and 'company="acme"' in metrics.text, metrics.text


def test_serve_refuses_a_store_url_no_database_can_be_at(tmp_path):
    # a missing folder (or another file): no migration job will ever open it, unlike a store
    # not migrated yet, which /readyz reports while the server waits
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "no-such-folder" / "arsync.db"}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "sync", "--config", str(config), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "arsync: configuration error: store.url: cannot open the store at "
        f"{tmp_path / 'no-such-folder' / 'arsync.db'}: the folder {tmp_path / 'no-such-folder'} "
        "does not exist (unable to open database file)\n"
    )
