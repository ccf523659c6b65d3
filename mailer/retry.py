"""The retry policy for mail, in one place.

Two clocks: `RetryPolicy` retries a message a few times within one delivery run
(exponential backoff with full jitter); `Backoff` spaces out the dispatcher runs that pick a
transiently failed message up again, and says when to give up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailer.results import Outcome, SendResult


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Immediate retries of one message on a transient result, inside one batch."""

    attempts: int = 3
    initial_seconds: float = 0.5
    max_seconds: float = 5.0

    async def run(
        self,
        attempt: Callable[..., Awaitable[SendResult]],
        *args: object,
        stop: Callable[[], bool] | None = None,
    ) -> SendResult:
        """Await `attempt(*args)` until it is not transient or the attempts are spent.

        Returns the last result (never raises for a transient one). Attempt n that is
        transient waits a random time up to `initial_seconds * 2**(n-1)` (at most
        `max_seconds`) before the next. Once `stop()` is true no further attempt begins and a
        wait between attempts ends early: a stopping worker must not spend its grace period
        on a server that does not answer.

        A loop rather than tenacity's `AsyncRetrying`: it runs once for every message sent,
        and tenacity's set-up and its look at how to call `attempt` cost about a tenth of a
        dispatch's time (10,000 reminders: 8.1-8.9 s against 8.7-10.3 s, in turn).
        """
        stopping = stop or _never
        number = 1
        while True:
            result = await attempt(*args)
            if result.outcome is not Outcome.TRANSIENT or number >= self.attempts or stopping():
                return result
            ceiling = min(self.max_seconds, self.initial_seconds * 2 ** (number - 1))
            await _sleep_unless(stopping, random.uniform(0, ceiling))
            number += 1


def _never() -> bool:
    return False


async def _sleep_unless(stop: Callable[[], bool], seconds: float) -> None:
    """Sleep `seconds`, or less once `stop()` is true (looked at every `POLL_SECONDS`)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not stop() and (left := deadline - asyncio.get_running_loop().time()) > 0:
        await asyncio.sleep(min(left, POLL_SECONDS))


POLL_SECONDS = 0.1  # how often a wait looks at the stop flag


@dataclass(frozen=True, slots=True)
class Backoff:
    """When the dispatcher tries a transiently failed message again.

    Attempt n waits between half and all of `base * 2**(n-1)` (capped); after
    `max_attempts` the message is failed for good.
    """

    max_attempts: int = 8
    base_seconds: float = 60.0
    cap_seconds: float = 6 * 3600.0

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """The next try after `attempts` failed ones, or None when it is time to give up."""
        if attempts >= self.max_attempts:
            return None
        delay = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return now + timedelta(seconds=random.uniform(delay / 2, delay))
