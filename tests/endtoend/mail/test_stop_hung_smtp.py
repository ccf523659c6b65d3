"""SIGTERM to `arsync run` while its mail server accepts connections but never greets (a hung
relay): the worker gives up connecting at once and exits within seconds, not after its three
30-second connection attempts, so systemd or Kubernetes never has to kill it. Nothing was
sent: every message is queued again as it was (a real process, a real signal, a real socket).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mailer.mails import ReminderMail, Sender
from store.db import make_engine, upgrade
from tests.mailer.conftest import put, reminders

MESSAGES = 20


class Mute:
    """A TCP listener on loopback that accepts every connection and never says a word."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(OSError):  # the accept timeout: look at `done` again
                self.held.append(self.server.accept()[0])

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        for connection in [*self.held, self.server]:
            connection.close()


@pytest.fixture
def mute() -> Iterator[Mute]:
    server = Mute()
    yield server
    server.close()


def _statuses(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text("SELECT status, attempts, last_error FROM outbox"))]


def _until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigterm_while_the_server_never_greets_stops_within_seconds(pg_url: str, tmp_path: Path, mute: Mute):
    engine = make_engine(pg_url)
    upgrade(engine)
    now = datetime.now(UTC)
    mail = ReminderMail("Someone", ("x@example.com",), "https://portal.acme.example", (), now.date())
    sender = Sender("acme", "Acme", "billing@acme.example")
    put(
        engine, reminders(sender, mail, MESSAGES, now), automatic=False, not_before=now - timedelta(minutes=1)
    )
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{pg_url}"\n[mail]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {mute.port}\nsmtp_security = "none"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_DEBUG")}
    command = [sys.executable, "-m", "sync", "--config", str(config), "run", "--time-scale", "60"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # connected, and the first messages marked `sending`: the worker now waits for a greeting
        started = _until(lambda: mute.held and ("sending",) in {s[:1] for s in _statuses(engine)}, 20)
        assert started, "the worker never began sending"
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            code = None
        took = time.monotonic() - began
        assert code == 0 and took < 5, f"exit {code} after {took:.1f}s: {worker.communicate()[1][-2000:]}"
        assert _statuses(engine) == [("queued", 0, None)] * MESSAGES  # untouched: no attempt counted
    finally:
        if worker.poll() is None:
            worker.kill()
        engine.dispose()
