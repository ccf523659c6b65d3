# ruff: noqa: F811 - the qbo fixture is imported, then requested by name
"""The OAuth connection lifecycle from outside, cases an audit found: the CLI, the daemon's
jobs, the simulators' real token endpoints and the SQL store."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.simulators.generator import sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from tests.sync.test_auth_cli import KEY, Done, qbo, run_in_process, setup  # noqa: F401 - qbo is a fixture

NOW = datetime.now(UTC)


@pytest.fixture
def arsync(monkeypatch, capsys):
    """`arsync --config CONFIG ARGS...` with the environment `env`, in this process: these tests
    hold it to its exit codes, its output, the store and the simulators' token endpoints."""

    def run(config: Path, env: dict, *args: str, check: bool = False) -> Done:
        done = run_in_process(monkeypatch, capsys, env, ["--config", str(config), *args])
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return run


def token_requests(sim: QuickBooksSimulator) -> int:
    return sim.counters.requests.get("token", 0)


def connected(tmp_path: Path, store_url: str, qbo: QuickBooksSimulator, arsync) -> tuple[Path, dict, object]:
    """A configuration for `qbo` holding a fresh token pair whose access token has expired
    (the next call refreshes): (config, env, the pair)."""
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    arsync(
        config, env, "auth", "set-tokens", "acme",
        "--access-token", pair.access_token, "--refresh-token", pair.refresh_token, "--expires-in", "0",
        check=True,
    )  # fmt: skip
    return config, env, pair


def test_a_refused_refresh_token_is_not_sent_again_by_every_later_sync(tmp_path, store_url, qbo, arsync):
    """SPEC 3: a refresh that fails with `invalid_grant` marks the connection "reconnect
    needed" *instead of retrying forever*. Once the connection says reconnect_needed, later
    syncs (each scheduled interval, each webhook) must not keep presenting the refused refresh
    token to the provider; they fail at once saying a reconnect is needed, until new tokens
    are stored."""
    config, env, pair = connected(tmp_path, store_url, qbo, arsync)
    qbo.tokens.revoke(pair.refresh_token)  # the admin disconnected the app at Intuit

    first = arsync(config, env, "sync", "--json")
    assert first.returncode == 1
    assert token_requests(qbo) == 1  # the one refresh that learned the token is refused
    status = json.loads(arsync(config, env, "status", "--json", check=True).stdout)
    assert "reconnect_needed" in json.dumps(status)

    for _ in range(3):  # later scheduled syncs, webhook-triggered syncs...
        again = arsync(config, env, "sync", "--json")
        assert again.returncode == 1
        assert "reconnect" in json.loads(again.stdout.splitlines()[0])["error"]
    assert token_requests(qbo) == 1, "the refused refresh token was sent to the provider again"

    fresh = qbo.tokens.issue()  # `auth set-tokens` recovers the connection
    arsync(
        config, env, "auth", "set-tokens", "acme",
        "--access-token", fresh.access_token, "--refresh-token", fresh.refresh_token,
        check=True,
    )  # fmt: skip
    assert arsync(config, env, "sync", "--json").returncode == 0


def test_a_xero_company_without_tenant_id_does_not_stop_the_other_companies_sync(
    tmp_path, sqlite_url, arsync
):
    """SPEC 8: bad configuration gives a clear message; SPEC 6: `arsync sync` reports one
    object per company. A Xero connection whose `tenant_id` was left empty (the config
    loader accepts it) must fail that company alone, not abort the whole command before the
    correctly configured companies are synced."""
    from connectors.simulators.xero import XeroSimulator

    with XeroSimulator([sample_company("xero", today=NOW.date())]) as sim:
        tenant = sim.tenants[0]
        config = tmp_path / "arsync.toml"
        connection = f"""kind = "xero"
client_id = "{sim.tokens.client_id}"
client_secret_env = "XERO_SECRET"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
"""
        config.write_text(f"""
[store]
url = "{sqlite_url}"
[[companies]]
id = "notenant"
name = "No tenant yet"
[companies.connection]
{connection}
[[companies]]
id = "good"
name = "Good"
[companies.connection]
tenant_id = "{tenant}"
{connection}
""")
        env = {**os.environ, "XERO_SECRET": sim.tokens.client_secret, "ARSYNC_SECRET_KEY": KEY}
        env.pop("ARSYNC_CONFIG", None)
        arsync(config, env, "db", "upgrade", check=True)
        for company in ("notenant", "good"):
            pair = sim.tokens.issue()
            arsync(
                config, env, "auth", "set-tokens", company,
                "--access-token", pair.access_token, "--refresh-token", pair.refresh_token,
                check=True,
            )  # fmt: skip
        done = arsync(config, env, "sync", "--json")
        assert done.returncode == 1  # one company failed
        results = {r["company"]: r for r in map(json.loads, done.stdout.splitlines())}
        assert results["good"]["status"] == "ok", done.stderr
        assert results["notenant"]["status"] == "failed"
        assert "tenant_id" in results["notenant"]["error"]


def test_a_xero_organisation_disconnected_from_the_app_is_said_with_what_to_do(tmp_path, store_url, arsync):
    """Xero answers 403 AuthenticationUnsuccessful when the tokens are good but may no longer
    read the organisation (disconnected from the app in Xero, its user's access removed, the
    organisation gone; or `tenant_id` names another). The refresh token still works, so the
    connection is not marked for a reconnect, but the failed sync and `status` must say what
    happened and what to run: they said only "Xero refused the request (HTTP 403):
    AuthenticationUnsuccessful"."""
    from connectors.simulators.xero import XeroSimulator
    from tests.sync.test_auth_cli import xero_setup

    with XeroSimulator([sample_company("xero", today=NOW.date())]) as sim:
        tenant = sim.tenants[0]
        config, env = xero_setup(tmp_path, store_url, sim, tenant)
        pair = sim.tokens.issue()
        arsync(
            config, env, "auth", "set-tokens", "acme",
            "--access-token", pair.access_token, "--refresh-token", pair.refresh_token,
            check=True,
        )  # fmt: skip
        arsync(config, env, "sync", check=True)
        sim.remove_tenant(tenant)  # the organisation disconnected the app in Xero

        done = arsync(config, env, "sync", "--json")
        assert done.returncode == 1
        error = json.loads(done.stdout.splitlines()[0])["error"]
        status = json.loads(arsync(config, env, "status", "--json", check=True).stdout)[0]
    for said in (error, status["last_sync_error"]):
        assert "HTTP 403" in said and "disconnected" in said and "connection.tenant_id" in said
        assert "`arsync auth connect acme`" in said
    assert status["connection"] == "ok"  # the tokens themselves are good: nothing is blocked


def test_status_of_a_connection_waiting_for_a_reconnect_promises_no_sync(tmp_path, store_url, qbo, arsync):
    """Once the refresh token is refused, syncs are blocked until new tokens are stored, but
    `status` went on announcing the next sync ("due now ...: a worker syncs it at its next
    check"), a sync that never comes. It says instead that none runs until the admin
    reconnects, naming the command for this company; new tokens bring the due time back."""
    config, env, pair = connected(tmp_path, store_url, qbo, arsync)
    qbo.tokens.revoke(pair.refresh_token)
    assert arsync(config, env, "sync").returncode == 1

    seen = json.loads(arsync(config, env, "status", "--json", check=True).stdout)[0]
    assert seen["connection"] == "reconnect_needed"
    assert "due" not in seen["next_sync"]
    assert "`arsync auth connect acme`" in seen["next_sync"]
    text = arsync(config, env, "status", check=True).stdout
    assert f"  next sync:   {seen['next_sync']}\n" in text

    fresh = qbo.tokens.issue()
    arsync(
        config, env, "auth", "set-tokens", "acme",
        "--access-token", fresh.access_token, "--refresh-token", fresh.refresh_token,
        check=True,
    )  # fmt: skip
    seen = json.loads(arsync(config, env, "status", "--json", check=True).stdout)[0]
    assert seen["connection"] == "ok" and seen["next_sync"].startswith("due now")


def test_a_client_secret_the_token_endpoint_refuses_is_said_as_configuration(
    tmp_path, store_url, qbo, arsync
):
    """A rotated or mistyped client secret makes the token endpoint answer 401 invalid_client:
    the sync said "token endpoint answered HTTP 401: invalid_client", which reads like a
    lost connection. Reconnecting would not help (the consent is fine): it names the keys to
    check, and the tokens stay usable once the secret is right."""
    config, env, pair = connected(tmp_path, store_url, qbo, arsync)
    done = arsync(config, {**env, "ACME_SECRET": "rotated-in-the-developer-portal"}, "sync", "--json")
    assert done.returncode == 1
    error = json.loads(done.stdout.splitlines()[0])["error"]
    assert "invalid_client" in error and "connection.client_id" in error and "client_secret_env" in error
    assert json.loads(arsync(config, env, "status", "--json", check=True).stdout)[0]["connection"] == "ok"
    assert arsync(config, env, "sync").returncode == 0
