"""A sync process killed with SIGKILL at random points, then re-run, ends with exactly the store
an uninterrupted sync produces: nothing lost, nothing duplicated (SPEC section 8), also while
pages are fetched ahead (SPEC section 13)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero import XeroSimulator
from connectors.simulators.xero_limits import XeroLimits
from store.db import make_engine
from sync.cli import main

TABLES = {  # money through the views, where both backends present it as a number
    "customers": "SELECT ref, display_name, active, deleted, portal_visible FROM customers ORDER BY ref",
    "contacts": "SELECT customer_ref, email, position, valid, in_source, portal_status, eligible "
    "FROM contacts ORDER BY customer_ref, email",
    "invoices": "SELECT ref, customer_ref, doc_number, source_sent, voided, deleted, visible "
    "FROM invoices ORDER BY ref",
    "portal_invoices": "SELECT invoice_ref, total, balance FROM portal_invoices ORDER BY invoice_ref",
    "adjustments": "SELECT invoice_ref, amount FROM adjustments ORDER BY invoice_ref",
    "portal_customers": "SELECT customer_ref, balance_due FROM portal_customers ORDER BY customer_ref",
    # the account history: payments and credit memos pulled after the invoices, and what they pay
    # (their money through the views too: SQLite stores it as integer ten-thousandths)
    "payments": "SELECT ref, customer_ref, credit_only, voided, deleted FROM payments ORDER BY ref",
    "portal_payments": "SELECT payment_ref, amount, unapplied FROM portal_payments ORDER BY payment_ref",
    "credits": "SELECT ref, customer_ref, voided, deleted FROM credits ORDER BY ref",
    "portal_credits": "SELECT credit_ref, total, remaining FROM portal_credits ORDER BY credit_ref",
    "allocations": "SELECT owner_kind, owner_ref, line, source_kind, source_ref, invoice_ref "
    "FROM allocations ORDER BY owner_kind, owner_ref, line",
    "portal_statement": "SELECT customer_ref, kind, ref, amount, running_balance FROM portal_statement "
    "ORDER BY customer_ref, kind, ref",
}
CENTS = Decimal("0.0001")


def _plain(value):
    """Backend-neutral values: numbers as 4-place Decimals (SQLite views give floats), flags as bools."""
    if isinstance(value, float | Decimal):
        return Decimal(str(value)).quantize(CENTS)
    return value


def snapshot(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: [tuple(map(_plain, r)) for r in connection.execute(text(sql))]
                for name, sql in TABLES.items()
            }
    finally:
        engine.dispose()


def setup_store(directory: Path, url: str, sim: QuickBooksSimulator | XeroSimulator) -> Path:
    directory.mkdir(exist_ok=True)
    config = directory / "arsync.toml"
    if isinstance(sim, XeroSimulator):
        connection = f'kind = "xero"\ntenant_id = "{sim.tenants[0]}"\nclient_secret_env = "KILL_XERO_SECRET"'
    else:
        realm = sim.realms[0]
        connection = f'kind = "quickbooks"\nrealm_id = "{realm}"\nclient_secret_env = "KILL_QBO_SECRET"'
    config.write_text(f"""
[store]
url = "{url}"
[[companies]]
id = "acme"
name = "Acme"
[companies.connection]
{connection}
client_id = "{sim.tokens.client_id}"
api_base_url = "{sim.api_url}"
token_url = "{sim.token_url}"
""")
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


def arsync_sync(config: Path, *, capture: bool = False) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
    env["PYTHONFAULTHANDLER"] = "1"  # a test that finds it hung sends SIGABRT: every thread's stack
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "sync", "--config", str(config), "sync"],
        env=env,
        stdout=out,
        stderr=out,
        text=True,
    )


def wait_for_progress(url: str, pages_done: int, process: subprocess.Popen) -> bool:
    """Until the store holds `pages_done` committed pages of this company's sync (or the run ended)."""
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            with engine.connect() as connection:
                stored = connection.scalar(text("SELECT COUNT(*) FROM customers")) + connection.scalar(
                    text("SELECT COUNT(*) FROM invoices")
                )
            if stored and stored >= pages_done * 500:
                return True
            time.sleep(0.05)
        return process.poll() is not None
    finally:
        engine.dispose()


def page_decoders(parent: int) -> list[int]:
    """Pids of `parent`'s page decoder processes (`python -m connectors.offload`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError, PermissionError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"connectors.offload" in command:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie is reaped by init)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def books_sim(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    company = generate_company(
        "quickbooks", seed=5, customers=600, invoices=4500, today=datetime.now(UTC).date()
    )
    # A pull is the batch, then one round of 10 requests: with 0.4 s a request, the round's
    # pages come ~0.4 s after the first one is stored, so a kill up to 0.35 s after it
    # always lands in the pull (0.25 s a request was enough until the page decoder started
    # ahead and the simulator's rendering counted inside its latency; then a kill could
    # come after the sync had finished).
    with QuickBooksSimulator(company, latency=0.4) as sim:
        sim.prerender()
        monkeypatch.setenv("KILL_QBO_SECRET", sim.tokens.client_secret)
        yield sim


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_points_then_rerun_equals_uninterrupted(books_sim, tmp_path, seed, sqlite_url):
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert main(["--config", str(setup_store(tmp_path / "ref", reference, books_sim)), "sync"]) == 0
    expected = snapshot(reference)
    assert len(expected["invoices"]) > 3000 and len(expected["payments"]) > 2000  # two pages and more
    assert {row[1] for row in expected["portal_statement"]} == {"invoice", "credit", "payment"}

    config = setup_store(tmp_path / "killed", sqlite_url, books_sim)
    books_sim.gauge.peak.clear()
    rng = random.Random(seed)
    kills = 0
    killed_decoders: list[int] = []
    for attempt in range(2):  # kill twice, each time at a random moment after some progress
        process = arsync_sync(config)
        assert wait_for_progress(sqlite_url, pages_done=attempt + 1, process=process)
        time.sleep(rng.uniform(0.0, 0.35))
        decoders = page_decoders(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
            killed_decoders.extend(decoders)
        process.wait(timeout=60)
        if attempt == 0:
            interrupted = snapshot(sqlite_url)  # what the first kill left
    assert kills >= 1
    # a decoder process (connectors.offload) seen at a kill ended with its sync (whether one
    # had started by then depends on the moment: it starts with the first page fetched ahead)
    deadline = time.monotonic() + 10
    while any(map(running, killed_decoders)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(running, killed_decoders))
    assert books_sim.gauge.peak[books_sim.realms[0]] > 1  # killed while pages were fetched ahead
    assert interrupted != expected  # the resumed run may finish: the pull is short at 10 in flight
    final = arsync_sync(config)
    assert final.wait(timeout=120) == 0
    assert snapshot(sqlite_url) == expected


@pytest.fixture
def xero_sim(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    company = generate_company("xero", seed=5, customers=600, invoices=4500, today=datetime.now(UTC).date())
    roomy = XeroLimits(per_minute=10_000, per_day=100_000)  # every run is a new process: its own 60 a minute
    with XeroSimulator([company], latency=0.25, limits=roomy) as sim:
        sim.prerender()
        monkeypatch.setenv("KILL_XERO_SECRET", sim.tokens.client_secret)
        yield sim


@pytest.mark.parametrize("seed", [1, 2])
def test_xero_sigkill_at_random_points_then_rerun_equals_uninterrupted(xero_sim, tmp_path, seed, sqlite_url):
    """Xero asks a listing's pages ahead, and the next listing's first page with its tail."""
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert main(["--config", str(setup_store(tmp_path / "ref", reference, xero_sim)), "sync"]) == 0
    expected = snapshot(reference)
    assert len(expected["invoices"]) > 3000 and len(expected["payments"]) > 2000  # two pages and more

    config = setup_store(tmp_path / "killed", sqlite_url, xero_sim)
    xero_sim.limits.gauge.peak.clear()
    rng = random.Random(seed)
    kills = 0
    for attempt in range(2):  # kill twice, each time at a random moment after some progress
        process = arsync_sync(config)
        assert wait_for_progress(sqlite_url, pages_done=attempt + 1, process=process)
        time.sleep(rng.uniform(0.0, 0.4))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
    assert kills >= 1
    assert xero_sim.limits.gauge.peak[xero_sim.tenants[0]] > 1  # killed while pages were asked ahead
    assert snapshot(sqlite_url) != expected
    final = arsync_sync(config)
    assert final.wait(timeout=120) == 0
    assert snapshot(sqlite_url) == expected


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_after_the_page_in_hand_and_the_next_sync_resumes(
    books_sim, tmp_path, sqlite_url, stop_signal
):
    """The first Ctrl-C ends the run cleanly at a page boundary: recorded as interrupted, its
    lease released (the next sync starts at once), and resumed by the next sync to the same store.
    So does SIGTERM (a service manager, `timeout`, a container's stop): it killed the process,
    and `status` and `history` showed the run `running` until a later run settled it."""
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert main(["--config", str(setup_store(tmp_path / "ref", reference, books_sim)), "sync"]) == 0
    expected = snapshot(reference)

    config = setup_store(tmp_path / "stopped", sqlite_url, books_sim)
    process = arsync_sync(config, capture=True)
    assert wait_for_progress(sqlite_url, pages_done=1, process=process)
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, (out, err)
    assert "stopping after the page being committed" in err and "Traceback" not in err
    assert "acme: interrupted" in out and "not synced: acme (interrupted)" in err
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT status FROM sync_runs")).scalars().all() == ["interrupted"]
            assert connection.scalar(text("SELECT COUNT(*) FROM leases WHERE name LIKE 'sync:%'")) == 0
    finally:
        engine.dispose()
    assert snapshot(sqlite_url) != expected
    final = arsync_sync(config)
    assert final.wait(timeout=120) == 0
    assert snapshot(sqlite_url) == expected


def test_status_shows_a_killed_sync_interrupted_not_running(books_sim, tmp_path, sqlite_url, capsys):
    """A killed `arsync sync` leaves its run `running` in the store until a later run settles
    it. `status` showed it running: an admin with no worker and no new sync saw a sync in
    progress for hours while nothing synced. Its process no longer holds the company's sync
    lease, so `status` shows it as the next run will record it: interrupted."""
    config = setup_store(tmp_path / "killed", sqlite_url, books_sim)
    process = arsync_sync(config)
    assert wait_for_progress(sqlite_url, pages_done=1, process=process)
    assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    capsys.readouterr()
    assert main(["--config", str(config), "status", "--json"]) == 0
    [acme] = json.loads(capsys.readouterr().out)
    assert acme["last_sync_status"] == "interrupted"
    assert acme["last_sync_error"] == "the worker stopped before finishing"
    assert acme["last_success"] is None
