"""Waiting for a simulator's first answer to an endpoint, in tests that hold requests to force
an order of events in a pull fetching ahead."""

from __future__ import annotations

import time

from connectors.simulators.base import Counters


def after_first_answer(counters: Counters, endpoint: str, timeout: float = 30) -> None:
    """Wait (bounded) until the simulator has answered `endpoint` once, then a moment for the
    answer's callbacks, which run in the fetching thread once its body is read."""
    until = time.monotonic() + timeout
    while counters.requests.get(endpoint, 0) < 1:
        assert time.monotonic() < until, f"no request to {endpoint} within {timeout} s"
        time.sleep(0.01)
    time.sleep(0.2)
