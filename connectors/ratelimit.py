"""Client-side pacing: at most N requests per window and M in flight, per company.

Used so arsync stays under a provider's limits instead of discovering them through 429s.
A client takes its pacer from `ConnectorSettings.pacing` when the caller injects one (a
budget shared by every process, e.g. `store.pacing.StorePacer`), else this module's
per-process `RateLimiter`. Clock and sleep are injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Pacer(Protocol):
    """What a client paces its requests with: hold `slot()` around each request."""

    remaining_hint: int | None  # the provider's own count of requests left in this window

    def slot(self) -> AbstractContextManager[None]: ...


PacingFactory = Callable[[int, float, int], Pacer]
"""Given (requests per window, window in seconds, requests in flight), the pacer to use."""


class RateLimiter:
    def __init__(
        self,
        per_window: int,
        window_seconds: float = 60.0,
        concurrent: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_window = per_window
        self.window = window_seconds
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrent)
        self._clock = clock
        self._sleep = sleep
        self.remaining_hint: int | None = None  # from X-MinLimit-Remaining style headers

    def _reserve(self) -> float:
        """Reserve a send time; return how long to wait before it."""
        with self._lock:
            now = self._clock()
            while self._sent and now - self._sent[0] >= self.window:
                self._sent.popleft()
            if self.remaining_hint is not None and self.remaining_hint <= 0 and self._sent:
                wait = self.window - (now - self._sent[0])
                self.remaining_hint = None
                return max(wait, 0.0)
            if len(self._sent) < self.per_window:
                self._sent.append(now)
                return 0.0
            return self.window - (now - self._sent[0])

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot: waits for both the window and the concurrency cap."""
        with self._slots:
            while (wait := self._reserve()) > 0:
                self._sleep(wait)
            yield


def make_pacer(
    factory: PacingFactory | None,
    per_window: int,
    window_seconds: float,
    concurrent: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Pacer:
    """The injected pacer for these limits, or a per-process `RateLimiter` when none is."""
    if factory is not None:
        return factory(per_window, window_seconds, concurrent)
    return RateLimiter(per_window, window_seconds, concurrent, clock=clock, sleep=sleep)
