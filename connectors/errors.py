"""Errors as data: each connector classifies its failures once into an `Action`.

The helpers both connectors' tables use (Retry-After, a failure's description) live here.

The retry policy (how many attempts, how long to wait) lives in `connectors.retry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

REASON_LIMIT = 300  # characters of vendor text kept in a reason (status lines, logs)


class Action(Enum):
    RETRY = "retry"  # transient: connection error, 5xx, malformed body
    RATE_LIMITED = "rate_limited"  # 429 for the minute/concurrency limit: wait, then retry
    DAILY_LIMIT = "daily_limit"  # 429 for the day: stop this company until the reset
    REFRESH_TOKEN_THEN_RETRY = "refresh"  # 401: the access token expired early
    FAIL = "fail"  # anything else: stop the sync with the message


@dataclass(frozen=True, slots=True)
class Classified:
    action: Action
    reason: str
    retry_after: float | None = None  # seconds, from Retry-After when the server said


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds when the server sent a number; None when absent or not a number
    (then the policy backs off on its own). Both vendors send whole seconds, never a date."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def describe(error: BaseException, words: str | None = None) -> str:
    """`Type: words` for a reason (status lines, logs): the vendor's `words` (default: the
    error's first line), whitespace collapsed, at most `REASON_LIMIT` characters."""
    text = str(error).splitlines()[0] if words is None and str(error) else (words or "")
    text = " ".join(text.split())
    return f"{type(error).__name__}: {text}"[:REASON_LIMIT] if text else type(error).__name__
