"""`arsync run` stops on SIGTERM wherever the signal lands in its loop (`sync.daemon`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from store.db import make_engine, upgrade
from tests.fleet.test_fleet import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_a_stop_signal_landing_while_the_loop_holds_its_wake_lock_still_stops_the_worker(store_url, tmp_path):
    engine = make_engine(store_url)
    upgrade(engine)
    engine.dispose()
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_SECRET_KEY")}
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:  # a file: read while the worker may still run
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.fleet.stop_inside_wake", str(config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        code = worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.send_signal(signal.SIGUSR1)  # every thread's stack into the log (`sync.daemon`)
        wait_for(lambda: "most recent call first" in log.read_text(), 5)
        worker.kill()
        worker.wait()
        raise AssertionError(f"still running 30 s after SIGTERM:\n{log.read_text()[-6000:]}") from None
    err = log.read_text()
    assert code == 0, err[-3000:]
    assert "daemon.stopping" in err and "SIGTERM" in err, err[-3000:]
    assert "daemon.stopped" in err, err[-3000:]
