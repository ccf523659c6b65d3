"""Errors as data: each connector classifies its failures once into an `Action`.

The retry policy (how many attempts, how long to wait) lives in `connectors.retry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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


class TransientError(Exception):
    """A failure worth retrying, already classified (raised by connectors' HTTP layers)."""

    def __init__(self, classified: Classified) -> None:
        super().__init__(classified.reason)
        self.classified = classified
