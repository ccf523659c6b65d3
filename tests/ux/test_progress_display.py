"""`arsync sync` on a terminal: a live progress display with log lines above it, never inside it.

The sync runs in a real pseudo-terminal; a small terminal model replays what it wrote
(cursor moves and line erasing included) into the screen a user would see.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from datetime import UTC, datetime

import pytest

from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from portal_rules.records import Page
from sync.cli import main
from sync.orchestrator import SyncSummary
from sync.progress import SyncProgress

WIDTH = 160
CONTROL = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b[()][0-9A-Za-z]|\x1b[=>78]|([\s\S])")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def screen(raw: str) -> list[str]:
    """The terminal's lines after `raw` (no scrolling limit, no wrapping needed at WIDTH)."""
    lines: list[list[str]] = [[]]
    row = col = 0
    for match in CONTROL.finditer(raw):
        params, command, char = match.groups()
        count = int(params.split(";")[0]) if params and params.split(";")[0].isdigit() else None
        if command == "A":
            row = max(0, row - (count or 1))
        elif command == "B":
            row += count or 1
        elif command == "C":
            col += count or 1
        elif command == "D":
            col = max(0, col - (count or 1))
        elif command == "G":
            col = (count or 1) - 1
        elif command in ("K", "J"):
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            if count == 2:
                line.clear()
            elif count == 1:
                line[: col + 1] = [" "] * min(col + 1, len(line))
            else:
                del line[col:]
                if command == "J":
                    del lines[row + 1 :]
        elif char == "\r":
            col = 0
        elif char == "\n":
            row += 1
        elif char is not None and char >= " ":
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
    return ["".join(line).rstrip() for line in lines]


def run_in_terminal(argv: list[str], env: dict[str, str]) -> str:
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
    child = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert child.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def synced_on_a_terminal(tmp_path, sqlite_url, monkeypatch):
    books = generate_company(
        "quickbooks", seed=16, customers=400, invoices=4000, today=datetime.now(UTC).date()
    )
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with QuickBooksSimulator(books) as qbo:
        config = tmp_path / "arsync.toml"
        config.write_text(
            f'[store]\nurl = "{sqlite_url}"\n[log]\nlevel = "info"\n'
            '[[companies]]\nid = "acme"\nname = "Acme"\n[companies.connection]\nkind = "quickbooks"\n'
            f'realm_id = "{books.id}"\nclient_id = "{qbo.tokens.client_id}"\n'
            f'client_secret_env = "UX_PTY_SECRET"\napi_base_url = "{qbo.api_url}"\n'
            f'token_url = "{qbo.token_url}"\n'
        )
        monkeypatch.setenv("UX_PTY_SECRET", qbo.tokens.client_secret)
        pair = qbo.tokens.issue()
        assert main(["--config", str(config), "db", "upgrade"]) == 0
        tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
        assert main(["--config", str(config), "auth", "set-tokens", "acme", *tokens]) == 0
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(WIDTH)}
        yield run_in_terminal([sys.executable, "-m", "sync", "--config", str(config), "sync"], env)


def test_log_lines_print_above_the_progress_never_inside_it(synced_on_a_terminal):
    lines = [line for line in screen(synced_on_a_terminal) if line.strip()]
    logged = [line for line in lines if "sync.page_stored" in line]
    assert len(logged) >= 5  # the customers and 4,000 invoices (not all live) in pages of 1,000
    for line in logged:
        assert TIMESTAMP.match(line), line  # the log line starts its own line...
        assert "rec/s" not in line and "API calls" not in line, line  # ...and holds no progress
    # the display's last state: the company's line and one line per entity with the total the
    # API gave (QuickBooks counts each entity in its first batch), with its rate once
    # it has taken measurable time (customers, fetched ahead, can finish within the first tick)
    assert any(re.match(r"^acme ok\s+\d+ pages, \d+ API calls\s+\d:\d\d:\d\d$", line) for line in lines)
    assert any(
        # every customer read; the inactive ones (not imported) are not stored: said, not hidden
        re.match(
            r"^\s+customers\s+([\d,]+) / \1 read, [1-9][\d,]* stored\s+(?:[\d,]+ rec/s)?\s+\d:\d\d:\d\d$",
            line,
        )
        for line in lines
    ), [line for line in lines if "customers" in line]
    assert any(
        re.match(r"^\s+invoices\s+([1-9],\d{3}) / \1\s+[\d,]+ rec/s\s+\d:\d\d:\d\d$", line) for line in lines
    ), [line for line in lines if "invoices" in line]
    assert any(re.match(r"^acme: ok: [1-9]\d* customers, [1-9]\d{3} invoices", line) for line in lines)


def _displayed(steps: list[tuple[int, str, dict, int | None, int | None]]) -> list[str]:
    """The screen after a sync of `steps` (pages so far, entity, stored counts, the page's
    `total`, its `read`) ends ok, as a real pseudo-terminal showed it."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal was closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    stream = open(secondary, "w", encoding="utf-8", closefd=True)  # noqa: SIM115 - closed below
    summary = SyncSummary(company="acme")
    with SyncProgress(stream) as display:
        display.start("acme")
        for pages, entity, counts, total, read in steps:
            summary.pages, summary.api_calls = pages, pages
            for name, count in counts.items():
                setattr(summary, name, count)
            display.on_page(summary, Page(entity, total=total, read=read))
        summary.status = "ok"
        display.finish(summary)
    stream.close()
    reader.join(timeout=10)
    os.close(primary)
    return [line for line in screen(b"".join(chunks).decode("utf-8", "replace")) if line.strip()]


def test_entity_lines_show_the_pull_total_when_its_pages_know_it():
    """Pages that carry `total` (Xero's itemCount, QuickBooks' counts) make "n / total"; an
    entity whose pages do not (Xero contacts) shows its count alone."""
    lines = _displayed(
        [
            (1, "customers", {"customers": 120}, None, None),
            (2, "invoices", {"invoices": 1000}, 2500, 1000),
            (3, "invoices", {"invoices": 2000}, 2500, 1000),
            (4, "invoices", {"invoices": 2500}, 2500, 500),
            (5, "payments", {"payments": 1200}, 1200, None),
        ]
    )
    assert any(re.match(r"^\s+customers\s+120\s", line) for line in lines), lines
    assert any(re.match(r"^\s+invoices\s+2,500 / 2,500\s", line) for line in lines), lines
    assert any(re.match(r"^\s+payments\s+1,200 / 1,200\s", line) for line in lines), lines
    assert not any("customers" in line and "/" in line for line in lines), lines


def test_records_read_but_not_stored_do_not_look_lost():
    """Xero's invoice listing counts its bills and the invoices deleted before arsync saw them:
    the pull reads every one of its total, stores fewer, and says both."""
    lines = _displayed(
        [
            (1, "invoices", {"invoices": 900}, 2362, 1000),
            (2, "invoices", {"invoices": 1800}, 2362, 1000),
            (3, "invoices", {"invoices": 2200}, 2362, 362),
            (4, "customers", {"customers": 0}, None, 40),  # a page of suppliers only: read, none kept
        ]
    )
    assert any(re.match(r"^\s+invoices\s+2,362 / 2,362 read, 2,200 stored\s", line) for line in lines), lines
    assert not any("2,200 / 2,362" in line for line in lines), lines
