"""Waits that honour a stop: a connector's backoff, Retry-After and pacing sleeps can last
up to a minute, so they are taken in short steps and end with `Stopped` once the caller's
`stop()` turns true (`arsync run` on SIGTERM), instead of holding the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from connectors.base import Stopped

OptionsT = TypeVar("OptionsT", bound=Any)

STEP = 0.5  # seconds between looks at `stop()`: the longest a stop waits for a sleeping connector


def interruptible(
    sleep: Callable[[float], None], stop: Callable[[], bool] | None, *, step: float = STEP
) -> Callable[[float], None]:
    """`sleep`, taken in steps of at most `step` seconds, raising `Stopped` when `stop()` is true.

    Without `stop` it is `sleep` itself. The steps add up to the requested time (a virtual
    clock's `sleep` in tests sees the same total).
    """
    if stop is None:
        return sleep

    def wait(seconds: float) -> None:
        left = seconds
        while True:
            if stop():
                raise Stopped("stopped by a signal while waiting to retry; the next run resumes")
            if left <= 0:
                return
            part = min(step, left)
            sleep(part)
            left -= part

    return wait


def with_stop(options: OptionsT, stop: Callable[[], bool] | None) -> OptionsT:
    """Connector options (a frozen dataclass with `sleep`) whose every wait honours `stop`."""
    return options if stop is None else replace(options, sleep=interruptible(options.sleep, stop))
