"""Ctrl-C or SIGTERM in a command that writes as it goes (`sync`, `mail dispatch`): stop at a
safe point.

The first Ctrl-C (SIGINT) or SIGTERM (a service manager, `timeout`, a container being
stopped) asks the work to stop once what is in hand is recorded: the page being committed,
the messages already handed to the mail server. Raising at once instead would lose answers
the server gave (mail then counted as in doubt) or leave a transaction open under the
process's own cleanup; dying at SIGTERM's default left the sync's run `running` in `status`
and `history` until a later run settled it. A second signal aborts as Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Stop = Callable[[], bool]


@contextmanager
def stop_on_interrupt(what: str) -> Iterator[Stop]:
    """Within the block, the first SIGINT or SIGTERM makes the returned `stop()` true and
    prints "stopping after {what}"; the next one raises KeyboardInterrupt. Outside the main thread
    (where signals cannot be caught) `stop()` stays false and Ctrl-C is left as it is."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def interrupted(signum, frame) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()  # nothing in the main thread ever holds its lock (`is_set` takes none)
        again = "Ctrl-C again" if signum == signal.SIGINT else "terminated; a second signal"
        # Straight to the descriptor: the handler runs between two of the main thread's
        # bytecodes, perhaps inside a write to sys.stderr (the progress display, a log line),
        # where printing there again raised "reentrant call" instead of stopping.
        with suppress(OSError):
            os.write(_stderr_fd(), f"arsync: stopping after {what} ({again} to abort)\n".encode())

    previous = {number: signal.signal(number, interrupted) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested.is_set
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stderr_fd() -> int:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without one
        return 2
