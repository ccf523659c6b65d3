"""The one retry policy: exponential backoff with jitter, honouring Retry-After, bounded.

`call(fn, classify, ...)` runs `fn`, asks the connector's `classify` table what a failure
means, and retries, refreshes or stops accordingly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from connectors.base import ConnectorError, DailyLimitReached, ReconnectNeeded, Stopped, TokensUnreadable
from connectors.errors import Action, Classified

T = TypeVar("T")

MAX_ATTEMPTS = 6
MAX_WAIT = 60.0


class _Retryable(Exception):
    def __init__(self, classified: Classified, cause: BaseException) -> None:
        super().__init__(classified.reason)
        self.classified = classified
        self.cause = cause


def _wait(backoff: wait_random_exponential) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.classified.retry_after is not None:
            return min(error.classified.retry_after, MAX_WAIT)
        return backoff(state)

    return wait


def call(
    fn: Callable[[], T],
    classify: Callable[[BaseException], Classified],
    *,
    refresh: Callable[[], None] | None = None,
    attempts: int = MAX_ATTEMPTS,
    base_wait: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> T:
    """Run `fn` under the policy; raise `ConnectorError`/`DailyLimitReached` when it gives up."""
    refreshed = False

    def attempt() -> T:
        nonlocal refreshed
        try:
            return fn()
        except (ReconnectNeeded, DailyLimitReached, Stopped, TokensUnreadable):  # verdicts: never retried
            raise
        except Exception as exc:  # classified below; unknown ones become FAIL
            classified = classify(exc)
            if classified.action is Action.REFRESH_TOKEN_THEN_RETRY and refresh and not refreshed:
                refreshed = True
                refresh()
                raise _Retryable(Classified(Action.RETRY, classified.reason, 0.0), exc) from exc
            if classified.action in (Action.RETRY, Action.RATE_LIMITED):
                raise _Retryable(classified, exc) from exc
            if classified.action is Action.DAILY_LIMIT:
                wait = timedelta(seconds=classified.retry_after or 3600)
                raise DailyLimitReached(classified.reason, now() + wait) from exc
            raise ConnectorError(classified.reason) from exc

    retrying = Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
        stop=stop_after_attempt(attempts),
        wait=_wait(wait_random_exponential(multiplier=base_wait, max=MAX_WAIT)),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except _Retryable as exc:
        raise ConnectorError(f"gave up after {attempts} attempts: {exc.classified.reason}") from exc.cause
