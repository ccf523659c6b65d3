"""Xero's API rate limits: per tenant 60 calls/minute, 5000/day and 5 in flight, plus an
app-wide 10,000 calls/minute across tenants.

A refused call is not counted against any window (so a client that backs off recovers), and
its 429 says which limit was hit in `X-Rate-Limit-Problem` (`concurrent`, `day`, `minute`,
`appminute`) with `Retry-After` in whole seconds. Every answer carries the remaining counts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.simulators.base import Clock, ConcurrencyGauge, SlidingWindowLimiter

MINUTE = 60.0
DAY = 86_400.0


@dataclass(frozen=True)
class XeroLimits:
    """The limits to enforce; Xero's published values by default."""

    per_minute: int = 60
    per_day: int = 5000
    concurrent: int = 5
    app_per_minute: int = 10_000


class _TenantWindows:
    def __init__(self, limits: XeroLimits, clock: Clock) -> None:
        self.minute = SlidingWindowLimiter(limits.per_minute, MINUTE, clock)
        self.day = SlidingWindowLimiter(limits.per_day, DAY, clock)


class RateLimits:
    """Admission control for tenant-scoped calls, with Xero's headers and 429 reasons."""

    def __init__(self, limits: XeroLimits = XeroLimits(), clock: Clock = time.time) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantWindows] = {}
        self._app = SlidingWindowLimiter(limits.app_per_minute, MINUTE, clock)
        self.gauge = ConcurrencyGauge()

    def _windows(self, tenant_id: str) -> _TenantWindows:
        with self._lock:
            windows = self._tenants.get(tenant_id)
            if windows is None:
                windows = self._tenants[tenant_id] = _TenantWindows(self.limits, self._clock)
            return windows

    @contextmanager
    def slot(self, tenant_id: str) -> Iterator[str | None]:
        """Hold a call slot for `tenant_id`; yields None if admitted, else the limit hit."""
        if not self.gauge.try_enter(tenant_id, self.limits.concurrent):
            yield "concurrent"
            return
        try:
            yield self._take_windows(tenant_id)
        finally:
            self.gauge.leave(tenant_id)

    def _take_windows(self, tenant_id: str) -> str | None:
        windows = self._windows(tenant_id)
        with self._lock:  # check all windows, then take from all: refusals cost nothing
            if windows.day.remaining() == 0:
                return "day"
            if windows.minute.remaining() == 0:
                return "minute"
            if self._app.remaining() == 0:
                return "appminute"
            windows.day.try_acquire()
            windows.minute.try_acquire()
            self._app.try_acquire()
        return None

    def retry_after(self, tenant_id: str, problem: str) -> int:
        """Whole seconds until a call refused for `problem` could be admitted (at least 1)."""
        windows = self._windows(tenant_id)
        wait = {
            "day": windows.day.retry_after,
            "minute": windows.minute.retry_after,
            "appminute": self._app.retry_after,
        }.get(problem, lambda: 1.0)()
        return max(1, math.ceil(wait))

    def headers(self, tenant_id: str | None) -> dict[str, str]:
        """X-DayLimit-Remaining / X-MinLimit-Remaining (tenant) and X-AppMinLimit-Remaining."""
        headers = {"X-AppMinLimit-Remaining": str(self._app.remaining())}
        if tenant_id is not None:
            windows = self._windows(tenant_id)
            headers["X-DayLimit-Remaining"] = str(windows.day.remaining())
            headers["X-MinLimit-Remaining"] = str(windows.minute.remaining())
        return headers

    def reset(self) -> None:
        """Forget every window (a new day for all tenants)."""
        with self._lock:
            self._tenants.clear()
            self._app = SlidingWindowLimiter(self.limits.app_per_minute, MINUTE, self._clock)
