"""Ctrl-C in a command that writes as it goes (`sync`, `mail dispatch`): stop at a safe point.

The first Ctrl-C (SIGINT) asks the work to stop once what is in hand is recorded: the page
being committed, the messages already handed to the mail server. Raising at once instead
would lose answers the server gave (mail then counted as in doubt) or leave a transaction
open under the process's own cleanup. A second Ctrl-C aborts as usual.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Stop = Callable[[], bool]


@contextmanager
def stop_on_interrupt(what: str) -> Iterator[Stop]:
    """Within the block, the first SIGINT makes the returned `stop()` true and prints
    "stopping after {what}"; the next one raises KeyboardInterrupt. Outside the main thread
    (where signals cannot be caught) `stop()` stays false and Ctrl-C is left as it is."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def interrupted(signum, frame) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        print(f"arsync: stopping after {what} (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)
