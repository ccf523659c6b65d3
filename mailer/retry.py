"""The retry policy for mail, in one place.

Two clocks: `RetryPolicy` retries a message a few times within one delivery run
(tenacity, exponential backoff with full jitter); `Backoff` spaces out the dispatcher runs
that pick a transiently failed message up again, and says when to give up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, stop_any, wait_random_exponential

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

        Returns the last result (never raises for a transient one). `attempt` must be an
        `async def` function: tenacity decides how to call it from its type. Once `stop()` is
        true no further attempt begins and a wait between attempts ends early: a stopping
        worker must not spend its grace period on a server that does not answer.
        """
        stopping = stop or _never
        retrying = AsyncRetrying(
            stop=stop_any(stop_after_attempt(self.attempts), lambda _state: stopping()),
            wait=wait_random_exponential(multiplier=self.initial_seconds, max=self.max_seconds),
            retry=retry_if_result(lambda result: result.outcome is Outcome.TRANSIENT),
            retry_error_callback=lambda state: state.outcome.result(),
            sleep=lambda seconds: _sleep_unless(stopping, seconds),
        )
        return await retrying(attempt, *args)


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
    `max_attempts` the message is failed for good: with these, a server that answers "try
    again later" (4xx) for about a day. A server that cannot be reached at all (down, or
    refusing the connection, greeting or login) is not the message's fault and never fails
    it (SPEC 8: no mail is lost when the SMTP server is down): such a try is not counted,
    and the message is tried again within `unreachable_seconds`, so mail flows again a few
    minutes after the server is back.
    """

    max_attempts: int = 13
    base_seconds: float = 60.0
    cap_seconds: float = 6 * 3600.0
    unreachable_seconds: float = 180.0

    def unreachable_retry(self, now: datetime) -> datetime:
        """The next try of a message whose server could not be reached."""
        return _jittered(now, self.unreachable_seconds)

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """The next try after `attempts` failed ones, or None when it is time to give up."""
        if attempts >= self.max_attempts:
            return None
        return _jittered(now, min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0)))


def _jittered(now: datetime, delay: float) -> datetime:
    """`now` plus between half and all of `delay` seconds, so retries do not come in step."""
    return now + timedelta(seconds=random.uniform(delay / 2, delay))
