"""A token refresh cut off between the provider's answer and the save (the process killed).

The provider has rotated the refresh token; the store still holds the old one. Xero answers
the old one with the same new pair for 30 minutes, then refuses it: left to the company's
next sync (an interval later, often more than 30 minutes; a day for the keep-alive's
refresh), the connection was lost. The workers find the refresh's lease its dead holder
left behind and finish the refresh at once, within the grace.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connectors.simulators.generator import sample_company
from connectors.simulators.xero import XeroSimulator
from store.credentials import DbCredentials, refresh_lease
from store.leases import try_acquire
from store.owners import worker_id
from store.tables import Lease
from sync.app import App
from sync.config import load_config
from sync.jobs import JobContext, finish_refreshes
from tests.sync.test_auth_cli import run_in_process, xero_setup


@pytest.fixture
def xero():
    """A Xero simulator whose clock the test moves (token expiry, the refresh grace)."""
    ahead = [0.0]
    with XeroSimulator(
        [sample_company("xero", today=datetime.now(UTC).date())], clock=lambda: time.time() + ahead[0]
    ) as sim:
        sim.ahead = ahead
        yield sim


@pytest.fixture
def connected(tmp_path, store_url, xero, monkeypatch, capsys):
    """Company acme on `xero`, its access token stale: its next sync begins with a refresh."""
    config, env = xero_setup(tmp_path, store_url, xero, xero.tenants[0])
    pair = xero.tokens.issue()
    tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token, "--expires-in", "0"]
    done = run_in_process(
        monkeypatch, capsys, env, ["--config", str(config), "auth", "set-tokens", "acme", *tokens]
    )
    assert done.returncode == 0, done.stderr
    for name in ("ACME_SECRET", "ARSYNC_SECRET_KEY"):
        monkeypatch.setenv(name, env[name])
    return config, env


def finish_as_a_worker(config) -> None:
    app = App.open(load_config(config))
    try:
        finish_refreshes(JobContext(app, app.config, lambda: datetime.now(UTC), lambda: False, "test"))
    finally:
        app.close()


def test_a_refresh_killed_before_its_save_is_finished_by_the_workers_within_xeros_grace(
    connected, xero, monkeypatch, capsys
):
    config, env = connected
    answer = xero.tokens.refresh
    syncing: list[subprocess.Popen] = []

    def rotated_then_killed(refresh_token: str):
        pair = answer(refresh_token)
        syncing[0].send_signal(signal.SIGKILL)  # the answer never reaches it
        return pair

    monkeypatch.setattr(xero.tokens, "refresh", rotated_then_killed)
    syncing.append(
        subprocess.Popen(
            [sys.executable, "-m", "sync", "--config", str(config), "sync", "acme"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    assert syncing[0].wait(timeout=120) == -signal.SIGKILL
    monkeypatch.setattr(xero.tokens, "refresh", answer)
    assert xero.tokens.refreshes == 1  # rotated at Xero, never stored here

    xero.ahead[0] = 60.0  # a worker's next minute
    finish_as_a_worker(config)
    xero.ahead[0] += 31 * 60  # past the grace of the refresh token the killed sync sent

    done = run_in_process(monkeypatch, capsys, env, ["--config", str(config), "sync", "--json", "acme"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.splitlines()[0])["status"] == "ok"
    app = App.open(load_config(config))
    try:
        with app.engine.connect() as connection:
            assert connection.scalars(select(Lease.name)).all() == []  # nothing left to finish
    finally:
        app.close()


def test_a_refresh_in_progress_is_left_to_its_process(connected, xero):
    """A refresh lease held by a live process is a refresh under way, not one cut off."""
    config, _ = connected
    app = App.open(load_config(config))
    try:
        assert try_acquire(app.engine, refresh_lease("acme"), worker_id(), timedelta(minutes=2))
        before = DbCredentials(app.engine, "acme", app.box).load()
    finally:
        app.close()
    finish_as_a_worker(config)
    assert xero.tokens.refreshes == 0
    app = App.open(load_config(config))
    try:
        assert DbCredentials(app.engine, "acme", app.box).load() == before
    finally:
        app.close()
