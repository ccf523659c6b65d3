# ruff: noqa: F811 - the qbo fixture is imported, then requested by name
"""New tokens stored while a sync is failing for want of them must not be marked "reconnect
needed" by that failure.

An admin runs `arsync auth connect` (or `set-tokens`) while the daemon's sync of the company
is failing: no tokens were stored yet, or the old refresh token was refused. The failure
used to mark the connection "reconnect needed" after the new tokens were saved, and every
later sync was then blocked until the admin connected a second time, with nothing saying
why. A failure only marks the connection when the tokens it failed with are still stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import Tokens
from connectors.oauth import TokenEndpoint
from store.credentials import DbCredentials
from store.crypto import SecretBox
from sync.app import App
from sync.cli import main
from sync.config import load_config
from tests.sync.test_auth_cli import KEY, qbo, setup  # noqa: F401 - qbo is a fixture


@pytest.fixture
def acme(tmp_path, store_url, qbo, monkeypatch) -> Path:
    config, env = setup(tmp_path, store_url, qbo)
    for name in ("ACME_SECRET", "ARSYNC_SECRET_KEY"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    App.open(load_config(config)).close()  # registers the company and its connection row
    return config


def admin_connects(store_url: str, qbo) -> None:
    """What `arsync auth set-tokens` stores: a fresh pair the simulator honours."""
    from store.db import make_engine

    pair = qbo.tokens.issue()
    expires = datetime.now(UTC) + timedelta(hours=1)
    engine = make_engine(store_url)
    try:
        DbCredentials(engine, "acme", SecretBox(KEY)).save(
            Tokens(pair.access_token, pair.refresh_token, expires, expires + timedelta(days=90))
        )
    finally:
        engine.dispose()


def sync(config: Path, capsys) -> dict:
    capsys.readouterr()
    code = main(["--config", str(config), "sync", "--json"])
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    return {"code": code, **result}


def connection_status(config: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["--config", str(config), "status", "--json"]) == 0
    [company] = json.loads(capsys.readouterr().out)
    return company["connection"]


def test_tokens_stored_while_a_sync_fails_for_want_of_them_are_kept_usable(
    acme, store_url, qbo, capsys, monkeypatch
):
    loaded = DbCredentials.load

    def load_then_admin_connects(self):
        tokens = loaded(self)  # nothing stored yet: this sync fails
        if tokens is None:
            admin_connects(store_url, qbo)  # ...as the admin's tokens land
        return tokens

    monkeypatch.setattr(DbCredentials, "load", load_then_admin_connects)
    failed = sync(acme, capsys)
    monkeypatch.setattr(DbCredentials, "load", loaded)

    assert failed["code"] == 1 and "no tokens stored: run `arsync auth connect acme`" in failed["error"]
    assert connection_status(acme, capsys) == "ok"
    after = sync(acme, capsys)
    assert after["code"] == 0, after


def test_tokens_stored_while_the_old_refresh_token_is_refused_are_kept_usable(
    acme, store_url, qbo, capsys, monkeypatch
):
    old = qbo.tokens.issue()
    stale = datetime.now(UTC) - timedelta(minutes=1)
    admin_connects(store_url, qbo)
    from store.db import make_engine

    engine = make_engine(store_url)
    DbCredentials(engine, "acme", SecretBox(KEY)).save(
        Tokens(old.access_token, old.refresh_token, stale, stale + timedelta(days=90))
    )
    engine.dispose()
    qbo.tokens.revoke(old.refresh_token)  # disconnected at Intuit; the admin reconnects
    refresh = TokenEndpoint.refresh

    def refused_as_the_admin_reconnects(self, refresh_token, now):
        admin_connects(store_url, qbo)
        return refresh(self, refresh_token, now)

    monkeypatch.setattr(TokenEndpoint, "refresh", refused_as_the_admin_reconnects)
    failed = sync(acme, capsys)
    monkeypatch.setattr(TokenEndpoint, "refresh", refresh)

    assert failed["code"] == 1 and "reconnect" in failed["error"], failed
    assert connection_status(acme, capsys) == "ok"
    after = sync(acme, capsys)
    assert after["code"] == 0, after


def test_a_refused_refresh_token_still_marks_the_connection(acme, store_url, qbo, capsys):
    """The guard above leaves the usual case alone: nothing new stored, reconnect needed."""
    old = qbo.tokens.issue()
    stale = datetime.now(UTC) - timedelta(minutes=1)
    from store.db import make_engine

    engine = make_engine(store_url)
    DbCredentials(engine, "acme", SecretBox(KEY)).save(
        Tokens(old.access_token, old.refresh_token, stale, stale + timedelta(days=90))
    )
    engine.dispose()
    qbo.tokens.revoke(old.refresh_token)

    assert sync(acme, capsys)["code"] == 1
    assert connection_status(acme, capsys) == "reconnect_needed"
    assert "reconnect needed" in sync(acme, capsys)["error"]  # blocked, without asking Intuit
