"""Run by test_stop_signal: `arsync run`'s loop, SIGTERM landing while the loop holds the lock
of its wake event.

A Python signal handler runs in the main thread between two bytecodes, which may be inside
`Event.wait()` or `Event.clear()` while they hold the event's (plain) lock; a worker whose
handler took that lock hung there, now and then, under load. Here the first `clear()` of
the loop raises SIGTERM inside that lock, so the handler runs there every time.

    python -m tests.fleet.stop_inside_wake CONFIG
"""

from __future__ import annotations

import signal
import sys
import threading

from sync.app import App
from sync.config import load_config
from sync.daemon import Daemon
from sync.logging import configure_logging


class SignalledInsideClear(threading.Event):
    """`threading.Event` whose first `clear()` (its own body) is where SIGTERM is handled:
    `raise_signal` runs the Python handler before it returns, the event's lock held."""

    def __init__(self) -> None:
        super().__init__()
        self.signalled = False

    def clear(self) -> None:
        with self._cond:
            if not self.signalled:
                self.signalled = True
                signal.raise_signal(signal.SIGTERM)
            self._flag = False


if __name__ == "__main__":
    configure_logging("info", "json")  # as `arsync run` logs when not on a terminal
    daemon = Daemon(App.open(load_config(sys.argv[1])), time_scale=60)
    daemon.wake = SignalledInsideClear()
    daemon.run_until_stopped()
