"""`arsync run` as a real process: scheduled syncs, mail inside the window only, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from connectors.simulators.quickbooks import QuickBooksSimulator
from store.db import make_engine
from sync.cli import main
from tests.endtoend.books import quickbooks_books
from tests.mailer.smtp_server import LoopbackController, Recorder

ZONE = "America/New_York"


def config_text(store_url: str, sim: QuickBooksSimulator, smtp_port: int, window: tuple[int, int]) -> str:
    return f"""
[store]
url = "{store_url}"
[log]
level = "info"
[mail]
transport = "smtp"
from_address = "billing@acme.example"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_security = "none"
[[companies]]
id = "acme"
name = "Acme"
timezone = "{ZONE}"
portal_url = "https://portal.acme.example"
sync_interval_minutes = 1
delivery_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
delivery_from_hour = {window[0]}
delivery_to_hour = {window[1]}
[companies.connection]
kind = "quickbooks"
realm_id = "{sim.realms[0]}"
client_id = "{sim.tokens.client_id}"
client_secret_env = "DAEMON_QBO_SECRET"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
"""


def count(store_url: str, sql: str) -> int:
    engine = make_engine(store_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text(sql))
    finally:
        engine.dispose()


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


@pytest.fixture
def daemon_world(tmp_path: Path, store_url: str, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    recorder = Recorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    with QuickBooksSimulator(quickbooks_books(datetime.now(UTC).date())) as sim:
        monkeypatch.setenv("DAEMON_QBO_SECRET", sim.tokens.client_secret)

        def configure(window: tuple[int, int]) -> Path:
            """A migrated store with acme's tokens, and its configuration."""
            config = tmp_path / "arsync.toml"
            config.write_text(config_text(store_url, sim, smtp.port, window))
            assert main(["--config", str(config), "db", "upgrade"]) == 0
            pair = sim.tokens.issue()
            assert (
                main(
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
                    ]
                )
                == 0
            )
            return config

        def start(window: tuple[int, int]) -> tuple[subprocess.Popen, Path]:
            config = configure(window)
            return launch(config), config

        yield start, configure, recorder, sim
    smtp.stop()


def launch(config: Path) -> subprocess.Popen:
    """`arsync run` at 60 times the speed (a minute's interval in a second)."""
    env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "sync", "--config", str(config), "run", "--time-scale", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    return process.returncode, err


def test_daemon_syncs_on_schedule_sends_in_window_and_stops_on_sigterm(daemon_world, store_url):
    start, _, recorder, _ = daemon_world
    process, _ = start((0, 23))  # always open
    try:
        assert wait_for(lambda: count(store_url, "SELECT COUNT(*) FROM sync_runs WHERE status='ok'") >= 2, 40)
        assert wait_for(lambda: len(recorder.received) >= 1, 30)
        # an operator's `kill -USR1` writes every thread's stack to the log, and changes nothing
        process.send_signal(signal.SIGUSR1)
    finally:
        began = time.monotonic()
        code, err = stop(process)
    assert code == 0, err[-2000:]
    assert time.monotonic() - began < 10
    assert '"event": "daemon.stopped"' in err  # JSON logs when not on a terminal
    assert "(most recent call first):" in err and "run_until_stopped" in err
    [mail] = recorder.received
    assert sorted(mail.rcpt_tos) == ["ap@cafe.example", "boss@cafe.example"]
    assert "1001" in mail.message.get_body(("plain",)).get_content()
    assert count(store_url, "SELECT COUNT(*) FROM outbox WHERE status='sent'") == 1


def test_daemon_holds_automatic_mail_outside_the_window(daemon_world, store_url):
    start, _, recorder, _ = daemon_world
    hour = datetime.now(ZoneInfo(ZONE)).hour
    closed = ((hour + 2) % 24, (hour + 3) % 24)  # a window that is not open now (nor in the next hour)
    process, _ = start(closed)
    try:
        assert wait_for(
            lambda: count(store_url, "SELECT COUNT(*) FROM outbox WHERE status='queued'") >= 1, 40
        )
        time.sleep(3)  # several dispatch ticks at this time scale
    finally:
        code, err = stop(process)
    assert code == 0, err[-2000:]
    assert recorder.received == []
    assert count(store_url, "SELECT COUNT(*) FROM outbox WHERE status='queued'") == 1


def test_one_company_failing_never_stops_the_others(daemon_world, store_url, tmp_path):
    """A second company whose API is unreachable fails its runs; the first one keeps syncing.
    A third, added to the store with a connector kind no worker has, fails before any run
    begins: it failed silently, every interval; the worker's log now says why."""
    _, configure, _, sim = daemon_world
    config = configure((0, 23))
    dead_port = free_port()
    config.write_text(
        config.read_text()
        + f"""
[[companies]]
id = "broken"
name = "Broken"
[companies.connection]
kind = "quickbooks"
realm_id = "1"
client_id = "x"
client_secret_env = "DAEMON_QBO_SECRET"
api_base_url = "http://127.0.0.1:{dead_port}/v3"
token_url = "http://127.0.0.1:{dead_port}/token"
"""
    )
    pair = sim.tokens.issue()
    assert (
        main(
            [
                "--config",
                str(config),
                "auth",
                "set-tokens",
                "broken",
                "--access-token",
                pair.access_token,
                "--refresh-token",
                pair.refresh_token,
            ]
        )
        == 0
    )
    stored = tmp_path / "stored.toml"
    stored.write_text(
        '[[companies]]\nid = "plugged"\nname = "Plugged"\n'
        '[companies.connection]\nkind = "nosuchkind"\nclient_id = "x"\n'
    )
    assert main(["--config", str(config), "company", "add", str(stored)]) == 0
    process = launch(config)
    try:
        ok = "SELECT COUNT(*) FROM sync_runs WHERE company_id='acme' AND status='ok'"
        failed = "SELECT COUNT(*) FROM sync_runs WHERE company_id='broken' AND status='failed'"
        tried = "SELECT COUNT(*) FROM sync_schedule WHERE company_id='plugged' AND last_status='failed'"
        before = count(store_url, ok)
        assert wait_for(
            lambda: (
                count(store_url, failed) >= 1
                and count(store_url, ok) >= before + 2
                and count(store_url, tried)
            ),
            60,
        )
    finally:
        code, err = stop(process)
    assert code == 0, err[-2000:]
    failures = [json.loads(line) for line in err.splitlines() if '"daemon.sync_failed"' in line]
    assert failures and {f["company"] for f in failures} == {"plugged"}
    assert failures[0]["error"].startswith("unknown connector kind 'nosuchkind'")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
