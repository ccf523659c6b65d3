"""Bearer-token calls, the same in every connector: one token policy around `connectors.retry`.

Each attempt takes the access token from the `TokenManager` (refreshed ahead of expiry,
under the store's cross-process lock). A 401 rejects that token; the next attempt refreshes
it once (unless another thread or process already did, see `TokenManager.refresh`) and
retries. Because the refresh happens inside an attempt, a token-endpoint hiccup (no answer,
5xx) is retried with backoff like any transient failure, while a refused refresh token
(`ReconnectNeeded`) stops the sync at once and a refused client (4xx) fails with its message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from connectors import retry
from connectors.errors import Action, Classified, describe
from connectors.oauth import TokenEndpointError, TokenManager

T = TypeVar("T")


def classify_token_failure(error: TokenEndpointError) -> Classified:
    """What to do when the token endpoint gave no tokens."""
    action = Action.RETRY if error.transient else Action.FAIL
    return Classified(action, f"token endpoint failed: {describe(error)}")


class Bearer:
    """The access token of one client's calls; threads fetching ahead share it."""

    def __init__(self, tokens: TokenManager) -> None:
        self.tokens = tokens
        self._lock = threading.Lock()  # one thread at a time decides the token (and refreshes)

    def call(
        self,
        send: Callable[[str], T],
        classify: Callable[[BaseException], Classified],
        *,
        attempts: int = retry.MAX_ATTEMPTS,
        base_wait: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> tuple[T, int]:
        """`send(token)` under the retry policy; returns its result and the token-endpoint
        requests made for it (they are API calls of the sync too)."""
        token = ""
        rejected: str | None = None  # the token the server answered 401 to
        token_requests = 0

        def attempt() -> T:
            nonlocal token, rejected, token_requests
            with self._lock:
                before = self.tokens.requests
                try:
                    if rejected is None:
                        token = self.tokens.access_token()  # may refresh ahead of expiry
                    else:
                        token = self.tokens.refresh(stale=rejected)
                        rejected = None
                finally:
                    token_requests += self.tokens.requests - before
            return send(token)

        def reject() -> None:  # the policy's answer to a 401: refresh in the next attempt
            nonlocal rejected
            rejected = token
            self.tokens.invalidate()

        def classified(error: BaseException) -> Classified:
            if isinstance(error, TokenEndpointError):
                return classify_token_failure(error)
            return classify(error)

        result = retry.call(
            attempt,
            classified,
            refresh=reject,
            attempts=attempts,
            base_wait=base_wait,
            sleep=sleep,
            now=now,
        )
        return result, token_requests
