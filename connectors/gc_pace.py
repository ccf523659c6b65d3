"""Fewer garbage collections while a sync pulls its pages.

A 100k-invoice pull allocates about a million short-lived objects (records, rows, bound
values) and no reference cycles. At CPython's default, a young collection every 700 net
allocations, it ran ~1,150 collections, and their passes over older generations (every
imported module's objects) took 1.0-1.2 s of the sync process's ~8 s of CPU. With a young
collection every 10,000 allocations the same pull spends 0.1-0.15 s collecting; the little
cyclic garbage a pull makes waits a little longer for its collection.

The threshold is process-wide, so pulls running at once in one process (the daemon's
threads) share it: the first to start raises it, the last to end restores it. The page
decoder's process (`connectors.offload`) reads under it too: 0.55-0.66 s of collections
in 4.7-5.2 s of CPU at 100k, 0.16-0.18 s with it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000  # allocations between young collections during a pull


class _Raised:
    """How many pulls hold the raised threshold, and the one to restore after the last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.saved: tuple[int, int, int] = gc.get_threshold()


_RAISED = _Raised()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Young collections every `YOUNG_THRESHOLD` allocations inside the block (never fewer
    than the process already has)."""
    with _RAISED.lock:
        if _RAISED.holders == 0:
            _RAISED.saved = gc.get_threshold()
            young, *older = _RAISED.saved
            gc.set_threshold(max(young, YOUNG_THRESHOLD), *older)
        _RAISED.holders += 1
    try:
        yield
    finally:
        with _RAISED.lock:
            _RAISED.holders -= 1
            if _RAISED.holders == 0:
                gc.set_threshold(*_RAISED.saved)
