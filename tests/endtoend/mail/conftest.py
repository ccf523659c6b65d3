"""End-to-end harness: a TOML config, a migrated store holding synced data, the `arsync`
CLI (in-process or as a subprocess) and a real SMTP server on loopback.

Data reaches the store the way a sync brings it (`sync_company` over a scripted page
source); everything after that goes through the CLI, and mail is asserted as the SMTP
server received it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from mailer.outbox import OUTBOX
from portal_rules.records import CustomerRecord, InvoiceRecord, Quarantined
from store.db import make_engine, sqlite_file, upgrade
from sync.cli import main
from sync.config import Config, load_config
from sync.orchestrator import sync_company
from sync.settings import company_policy
from tests.mailer.smtp_server import LoopbackController, Received, Recorder
from tests.sync.scripted import ScriptedSource

COMPANY = "acme"
PORTAL = "https://portal.acme.example"
FROM = "billing@acme.example"
SYNCED_AT = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
FRIDAY_10AM = datetime.fromisoformat("2026-11-20T15:00:00+00:00")  # Fri 10:00 in New York (EST)
INVITE_LINK = re.compile(re.escape(PORTAL) + r"/invite/([A-Za-z0-9_-]{43})")
TABLES = ("outbox", "reminder_ledger", "invitations", "access_requests", "contacts", "customers", "invoices")


def customer(ref: str, name: str, *emails: str, active: bool = True) -> CustomerRecord:
    return CustomerRecord(ref, name, active, emails)


def invoice(
    ref: str,
    customer_ref: str,
    due: date,
    balance: str,
    *,
    currency: str = "USD",
    sent: bool = True,
    voided: bool = False,
) -> InvoiceRecord:
    amount = Decimal(balance)
    return InvoiceRecord(
        ref, customer_ref, f"INV-{ref}", date(2026, 1, 1), due, currency, amount, amount, sent, voided=voided
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_config(path: Path, store_url: str, smtp_port: int, **company: object) -> Path:
    """An arsync.toml with one company (overridable keys) mailing through the loopback server."""
    settings = {
        "id": COMPANY,
        "name": "Acme Landscaping",
        "timezone": "America/New_York",
        "portal_url": PORTAL,
        "plan": "pro",
        "delivery_days": ["mon", "tue", "wed", "thu", "fri"],
        "delivery_from_hour": 9,
        "delivery_to_hour": 17,
        **company,
    }
    lines = [
        "[store]",
        f"url = {_toml(store_url)}",
        "",
        "[log]",
        'level = "warning"',
        "",
        "[mail]",
        'transport = "smtp"',
        f"from_address = {_toml(FROM)}",
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {smtp_port}",
        'smtp_security = "none"',
        "",
        "[[companies]]",
        *(f"{key} = {_toml(value)}" for key, value in settings.items()),
        "",
        "[companies.connection]",
        'kind = "scripted"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Smtp:
    """A recording SMTP server that can be stopped and started again on the same port."""

    recorder: Recorder = field(default_factory=Recorder)
    controller: LoopbackController | None = None
    port: int = 0

    def start(self) -> None:
        self.controller = LoopbackController(self.recorder, port=self.port)
        self.controller.start()
        self.port = self.controller.port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> list[Received]:
        with self.recorder.lock:
            return list(self.recorder.received)

    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received]


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


@dataclass
class Shop:
    """One company's world: its config file, its migrated store, and the CLI over both."""

    path: Path
    config: Config
    engine: Engine
    capsys: pytest.CaptureFixture

    @property
    def company(self):
        return self.config.company(COMPANY)

    def sync(self, customers: list[CustomerRecord], invoices: list[InvoiceRecord]) -> None:
        """Store records as a sync from the accounting system would."""
        source = ScriptedSource(customers, invoices, page_size=500)
        summary = sync_company(
            self.engine, COMPANY, company_policy(self.company), source, owner="e2e", clock=lambda: SYNCED_AT
        )
        assert summary.status == "ok", summary.error

    def sync_changes(
        self, changes: list[CustomerRecord | InvoiceRecord], unreadable: list[Quarantined] = ()
    ) -> None:
        """Store changed records as the next incremental sync would (after `sync`); records
        `unreadable` changed in a form the connector quarantined."""
        source = ScriptedSource(changes=changes, unreadable=list(unreadable))
        summary = sync_company(
            self.engine, COMPANY, company_policy(self.company), source, owner="e2e", clock=lambda: SYNCED_AT
        )
        assert summary.status == "ok", summary.error

    def cli(self, *args: str) -> Result:
        """`arsync --config PATH ARGS...` in this process (exit code, stdout, stderr)."""
        self.capsys.readouterr()
        code = main(["--config", str(self.path), *args])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def process(self, *args: str) -> Result:
        """`arsync --config PATH ARGS...` as a separate process."""
        env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_DEBUG")}
        done = subprocess.run(
            [sys.executable, "-m", "sync", "--config", str(self.path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine.connect() as connection:
            return connection.scalar(text(sql), params)

    def rows(self, sql: str, **params: object) -> list[tuple]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def outbox(self, *columns: str) -> list[tuple]:
        """Outbox rows (by id) through the table's own column types (aware datetimes on SQLite too)."""
        with self.engine.connect() as connection:
            query = select(*(OUTBOX.c[name] for name in columns)).order_by(OUTBOX.c.id)
            return [tuple(row) for row in connection.execute(query)]

    def snapshot(self) -> dict[str, object]:
        """Row counts of every table a command could touch, plus the outbox states."""
        counts: dict[str, object] = {t: self.scalar(f"SELECT COUNT(*) FROM {t}") for t in TABLES}
        counts["outbox_states"] = self.rows("SELECT id, status, attempts FROM outbox ORDER BY id")
        counts["portal_accounts"] = self.rows(
            "SELECT customer_ref, email, status FROM portal_accounts ORDER BY customer_ref, email"
        )
        return counts


@pytest.fixture
def make_shop(tmp_path: Path, capsys: pytest.CaptureFixture, smtp: Smtp, request: pytest.FixtureRequest):
    """`make_shop(store_url, **company_settings)`: a configured, migrated company. A new SQLite
    store is a copy of one migrated once per test process (tests/conftest.py); an existing one
    (a second shop on the same store) is upgraded, a no-op."""
    engines: list[Engine] = []

    def make(store_url: str, **company: object) -> Shop:
        path = write_config(tmp_path / "arsync.toml", store_url, smtp.port, **company)
        file = sqlite_file(store_url)
        new = file is not None and not file.exists()
        engine = make_engine(store_url)
        engines.append(engine)
        if new:
            shutil.copyfile(request.getfixturevalue("_migrated_sqlite_file"), file)
        else:
            upgrade(engine)
        shop = Shop(path, load_config(path), engine, capsys)
        assert shop.cli("status").code == 0  # registers the company, as every command does
        return shop

    yield make
    for engine in engines:
        engine.dispose()
