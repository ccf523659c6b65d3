"""How long a company whose syncs keep dying with their workers waits before the next try.

A run a worker began and never finished (its claim expired: the worker was killed or lost)
is taken up again at once, the first time. A second in a row waits 5 minutes after the claim
expired, a third 20, then an hour each time: a company whose sync kills its worker (an
out-of-memory payload, a crash in a native library) would otherwise take the fleet down one
worker after another, and every sync running beside it. Kept apart from `store.schedule`
so `arsync status` can say when the next try is without importing the table classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

ABANDONED_HOLDS = (timedelta(0), timedelta(minutes=5), timedelta(minutes=20), timedelta(hours=1))


def held_for(abandoned_before: int, holds: Sequence[timedelta] = ABANDONED_HOLDS) -> timedelta:
    """How long after its claim expired an abandoned run waits, `abandoned_before` runs in a
    row having been abandoned before it."""
    return holds[min(abandoned_before, len(holds) - 1)]
