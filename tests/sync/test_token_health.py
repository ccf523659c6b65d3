"""What an admin is told about a connection's tokens before a sync fails on them: tokens this
process cannot read, a refresh token near or past its end, one whose end nobody knows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from connectors.simulators.generator import sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.db import make_engine
from store.tables import CompanyConnection
from sync.app import App
from sync.config import load_config
from sync.jobs import JobContext, keep_alive
from tests.sync.test_auth_cli import Done, run_in_process, setup


@pytest.fixture
def qbo():
    with QuickBooksSimulator(sample_company("quickbooks", today=datetime.now(UTC).date())) as sim:
        yield sim


@pytest.fixture
def arsync(monkeypatch, capsys):
    """`arsync --config CONFIG ARGS...` with the environment `env`, in this process: what these
    tests hold it to is its output and the store, and it reads ARSYNC_SECRET_KEY per command."""

    def run(config, env, *args: str) -> Done:
        return run_in_process(monkeypatch, capsys, env, ["--config", str(config), *args])

    return run


def status_of(arsync, config, env) -> dict:
    done = arsync(config, env, "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0]


def refresh_expiry(store_url: str) -> datetime | None:
    engine = make_engine(store_url)
    with engine.connect() as connection:
        expires = connection.execute(select(CompanyConnection.refresh_expires_at)).scalar_one()
    engine.dispose()
    return expires


def test_tokens_sealed_with_another_key_are_named_in_the_sync_and_in_status(tmp_path, store_url, qbo, arsync):
    """A missing or changed ARSYNC_SECRET_KEY read "unexpected error: SecretKeyError: ..." in
    the failed sync, and `status` said `connection: ok`. The connection is not lost: the
    right key reads the tokens again, so nothing is marked for a reconnect."""
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
    assert arsync(config, env, "auth", "set-tokens", "acme", *tokens).returncode == 0
    other = {**env, "ARSYNC_SECRET_KEY": "not-the-key-they-were-sealed-with"}
    unset = {k: v for k, v in env.items() if k != "ARSYNC_SECRET_KEY"}
    for wrong, why in (
        (other, "cannot be decrypted with this ARSYNC_SECRET_KEY"),
        (unset, "set ARSYNC_SECRET_KEY"),
    ):
        done = arsync(config, wrong, "sync", "acme")
        assert done.returncode == 1
        assert "unexpected error" not in done.stdout + done.stderr
        assert why in done.stdout and "auth connect acme" in done.stdout
        assert "Traceback" not in done.stderr
        seen = status_of(arsync, config, wrong)
        assert why in seen["last_sync_error"] and "unexpected" not in seen["last_sync_error"]
        if wrong is other:  # this key does not open them
            assert seen["connection"] == "tokens_unreadable"
            assert why in seen["connection_detail"]
            assert "connection:  tokens_unreadable (" in arsync(config, wrong, "status").stdout
        else:  # a shell without the key cannot open them; the last sync could not either: not "ok"
            assert seen["connection"] == "tokens_unreadable"
            assert seen["connection_detail"].startswith("the last sync could not read them: ")
    assert qbo.tokens.refreshes == 0  # no request was made with tokens it could not read
    done = arsync(config, env, "sync", "acme")  # the right key: the same tokens, no reconnect
    assert done.returncode == 0, done.stdout + done.stderr
    assert status_of(arsync, config, env)["connection"] == "ok"
    # a shell without the key cannot tell, and says so (the workers' key opened them last time)
    seen = status_of(arsync, config, unset)
    assert seen["connection"] == "ok"
    assert "this process has no ARSYNC_SECRET_KEY to check them" in seen["connection_detail"]
    # this shell's key opens them, the workers' did not (started with another): said, not "ok"
    assert arsync(config, other, "sync", "acme").returncode == 1
    seen = status_of(arsync, config, env)
    assert seen["connection"] == "tokens_unreadable"
    assert (
        "this process's ARSYNC_SECRET_KEY opens them, but the last sync's did not"
        in seen["connection_detail"]
    )


def test_set_tokens_from_the_environment_with_a_refresh_expiry_status_warns_before_it_ends(
    tmp_path, store_url, qbo, arsync
):
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    hidden = {**env, "ARSYNC_ACCESS_TOKEN": pair.access_token, "ARSYNC_REFRESH_TOKEN": pair.refresh_token}
    done = arsync(config, hidden, "auth", "set-tokens", "acme", "--refresh-expires-in", str(3 * 86400))
    assert done.returncode == 0, done.stderr
    expires = refresh_expiry(store_url)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=3))) < timedelta(minutes=5)
    seen = status_of(arsync, config, env)
    assert seen["connection"] == "ok"
    assert f"the refresh token expires at {expires.isoformat()}" in seen["connection_detail"]
    assert "no `arsync run` worker is running to refresh it" in seen["connection_detail"]
    assert arsync(config, env, "sync", "acme").returncode == 0  # the tokens themselves work

    engine = make_engine(store_url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE connections SET refresh_expires_at = :at"),
            {"at": datetime.now(UTC) - timedelta(hours=1)},
        )
    engine.dispose()
    seen = status_of(arsync, config, env)
    assert seen["connection"] == "refresh_expired"
    assert "reconnect with `arsync auth connect acme`" in seen["connection_detail"]


def test_tokens_stored_without_a_refresh_expiry_are_refreshed_by_the_keep_alive(
    tmp_path, store_url, qbo, arsync, monkeypatch
):
    """`auth set-tokens` stored no refresh expiry and the daily keep-alive skipped such a
    connection: a refresh token of unknown age could die unused. Now the keep-alive refreshes
    it once, and the answer's lifetime is stored."""
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
    assert arsync(config, env, "auth", "set-tokens", "acme", *tokens).returncode == 0
    assert refresh_expiry(store_url) is None
    assert "expiry is unknown" in status_of(arsync, config, env)["connection_detail"]
    for name in ("ACME_SECRET", "ARSYNC_SECRET_KEY"):
        monkeypatch.setenv(name, env[name])
    app = App.open(load_config(config))
    try:
        keep_alive(JobContext(app, app.config, lambda: datetime.now(UTC), lambda: False, "test"))
        assert qbo.tokens.refreshes == 1
        keep_alive(JobContext(app, app.config, lambda: datetime.now(UTC), lambda: False, "test"))
        assert qbo.tokens.refreshes == 1  # learnt: far from expiry now
    finally:
        app.close()
    expires = refresh_expiry(store_url)
    assert expires is not None and expires > datetime.now(UTC) + timedelta(days=30)
    seen = status_of(arsync, config, env)
    assert (seen["connection"], seen["connection_detail"]) == ("ok", None)


def test_set_tokens_under_now_dates_both_expiries_on_the_real_clock(tmp_path, store_url, qbo, arsync):
    """Tokens expire in real time whatever `--now` replays (the connectors judge them on the
    wall clock): under `--now`, an access token dated in the replay's past was refreshed at
    once, one dated in its future was sent after it had expired. `--now` is still accepted
    (SPEC §6: every command that depends on the time takes it), and still checked."""
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    hidden = {**env, "ARSYNC_ACCESS_TOKEN": pair.access_token, "ARSYNC_REFRESH_TOKEN": pair.refresh_token}
    args = ("--expires-in", "3600", "--refresh-expires-in", str(3 * 86400))
    refused = arsync(config, hidden, "auth", "set-tokens", "acme", *args, "--now", "soon")
    assert refused.returncode == 2
    assert "not an ISO-8601 date-time: 'soon'" in refused.stderr and "Traceback" not in refused.stderr
    done = arsync(config, hidden, "auth", "set-tokens", "acme", *args, "--now", "2031-01-01T00:00:00Z")
    assert done.returncode == 0, done.stderr
    engine = make_engine(store_url)
    with engine.connect() as connection:
        row = connection.execute(
            select(CompanyConnection.access_expires_at, CompanyConnection.refresh_expires_at)
        ).one()
    engine.dispose()
    now = datetime.now(UTC)
    assert abs(row.access_expires_at - (now + timedelta(hours=1))) < timedelta(minutes=5)
    assert abs(row.refresh_expires_at - (now + timedelta(days=3))) < timedelta(minutes=5)


def test_status_says_when_the_tokens_are_stored_unencrypted(tmp_path, store_url, qbo, arsync):
    """Without ARSYNC_SECRET_KEY the tokens are stored as they are: `auth set-tokens` said so
    once, and `status` then said "connection: ok" for ever, as `demo` stores them silently."""
    config, env = setup(tmp_path, store_url, qbo)
    plain = {k: v for k, v in env.items() if k != "ARSYNC_SECRET_KEY"}
    pair = qbo.tokens.issue()
    tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
    assert (
        arsync(
            config, plain, "auth", "set-tokens", "acme", *tokens, "--refresh-expires-in", "8640000"
        ).returncode
        == 0
    )

    seen = status_of(arsync, config, plain)

    assert seen["connection"] == "ok"
    assert seen["connection_detail"].startswith("the tokens are stored unencrypted: set ARSYNC_SECRET_KEY")
    assert "then `arsync auth rekey` seals them" in seen["connection_detail"]
    seen = status_of(arsync, config, env)  # with a key set now: rekey is the way to seal them
    assert seen["connection_detail"] == (
        "the tokens are stored unencrypted: `arsync auth rekey` seals them with this process's key"
    )


def test_unencrypted_tokens_of_unknown_expiry_are_said_both(tmp_path, store_url, qbo, arsync):
    """The review found the "stored unencrypted" warning hidden behind the note that the
    refresh token's expiry is unknown (`auth set-tokens` without --refresh-expires-in)."""
    config, env = setup(tmp_path, store_url, qbo)
    plain = {k: v for k, v in env.items() if k != "ARSYNC_SECRET_KEY"}
    pair = qbo.tokens.issue()
    tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
    assert arsync(config, plain, "auth", "set-tokens", "acme", *tokens).returncode == 0

    detail = status_of(arsync, config, plain)["connection_detail"]

    assert detail.startswith("the refresh token's expiry is unknown")
    assert "; the tokens are stored unencrypted: set ARSYNC_SECRET_KEY" in detail


def test_a_quickbooks_refresh_token_at_its_five_year_limit_is_dated_by_it(tmp_path, store_url, qbo, arsync):
    """QuickBooks refresh tokens now end five years after the consent whatever their use; the
    token endpoint says when (`x_refresh_token_hard_expires_in`) only to a request with the
    `x-include-refresh-token-hard-expires-in: true` header. arsync stored the rolling 100 days
    after every refresh, so `status` said the connection was fine until the day it was
    refused. The stored expiry is now the nearer of the two: status warns ahead of it, and
    says how to renew a limit no refresh moves."""
    config, env = setup(tmp_path, store_url, qbo)
    pair = qbo.tokens.issue()
    tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token, "--expires-in", "0"]
    assert arsync(config, env, "auth", "set-tokens", "acme", *tokens).returncode == 0
    qbo.refresh_hard_expires_in = 10 * 86400  # the consent is 5 years old, less 10 days
    assert arsync(config, env, "sync", "acme").returncode == 0  # refreshes first

    expires = refresh_expiry(store_url)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=10))) < timedelta(minutes=5)
    seen = status_of(arsync, config, env)
    assert seen["connection"] == "ok"
    assert f"the refresh token expires at {expires.isoformat()}" in seen["connection_detail"]
    assert "`arsync auth connect acme`" in seen["connection_detail"]


def test_a_company_never_connected_is_told_how_to_connect(tmp_path, store_url, qbo, arsync):
    """`status` said only "connection: not_connected" (and "next sync: due now"): what to run
    was first said by the failed sync's error."""
    config, env = setup(tmp_path, store_url, qbo)
    seen = status_of(arsync, config, env)
    assert seen["connection"] == "not_connected"
    assert "`arsync auth connect acme`" in seen["connection_detail"]
    text = arsync(config, env, "status").stdout
    assert "  connection:  not_connected (no tokens stored yet: run `arsync auth connect acme`" in text
