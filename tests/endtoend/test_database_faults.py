"""The store misbehaving under a sync: SQLite locked by another writer, PostgreSQL restarted.

Outcomes asserted: the locked sync waits and completes; the sync that loses PostgreSQL
fails cleanly (exit 1, one line, no traceback) and the re-run ends with exactly the store
an uninterrupted sync gives.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sync.cli import main
from tests.endtoend.test_kill import arsync_sync, books_sim, setup_store, snapshot, wait_for_progress  # noqa: F401


def test_a_sync_waits_for_a_locked_sqlite_store_and_completes(books_sim, tmp_path, sqlite_url):  # noqa: F811
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert main(["--config", str(setup_store(tmp_path / "ref", reference, books_sim)), "sync"]) == 0
    config = setup_store(tmp_path / "locked", sqlite_url, books_sim)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=30, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    release = threading.Timer(3.0, holder.commit)
    release.start()
    started = time.monotonic()
    process = arsync_sync(config)
    assert process.wait(timeout=120) == 0
    release.join()
    holder.close()
    assert time.monotonic() - started >= 3.0  # it waited for the lock rather than failing
    assert snapshot(sqlite_url) == snapshot(reference)


def _restart_postgres() -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for _ in range(60):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("PostgreSQL did not come back")


@pytest.mark.restarts_postgres
@pytest.mark.skipif(not Path("/etc/postgresql").exists(), reason="needs the local PostgreSQL service")
def test_postgres_restarted_mid_sync_then_rerun_equals_uninterrupted(books_sim, tmp_path, pg_url):  # noqa: F811
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert main(["--config", str(setup_store(tmp_path / "ref", reference, books_sim)), "sync"]) == 0
    config = setup_store(tmp_path / "pg", pg_url, books_sim)
    process = arsync_sync(config, capture=True)
    assert wait_for_progress(pg_url, pages_done=1, process=process)
    _restart_postgres()
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # say where it hangs: faulthandler dumps every thread
        process.send_signal(signal.SIGABRT)
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"the sync did not end after the restart:\n{err[-8000:]}") from None
    if process.returncode != 0:  # the usual case: the connection died under a page
        assert process.returncode == 1
        assert "Traceback" not in err
    rerun = arsync_sync(config)
    assert rerun.wait(timeout=120) == 0
    assert snapshot(pg_url) == snapshot(reference)
