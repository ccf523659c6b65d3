"""Bearer-token calls, the same in every connector: one token policy around `connectors.retry`.

Each attempt takes the access token from the `TokenManager` (refreshed ahead of expiry,
under the store's cross-process lock). A 401 rejects that token; the next attempt refreshes
it once (unless another thread or process already did, see `TokenManager.refresh`) and
retries. Because the refresh happens inside an attempt, a token-endpoint hiccup (no answer,
5xx) is retried with backoff like any transient failure, while a refused refresh token
(`ReconnectNeeded`) stops the sync at once and a refused client (4xx) fails with its message.

Threads fetching ahead share one `Bearer`, and one refresh: the first thread whose refresh
meets a transient failure owns the retries (the policy's tries, with its backoff), while the
others wait for the outcome instead of each running the policy against the token endpoint
(a full pull asks four pages at once: four times the requests to an endpoint already down).
A refresh given up, or refused for good, fails the other threads without a request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from connectors import retry
from connectors.base import ConnectorError
from connectors.errors import Action, Classified, describe
from connectors.oauth import TokenEndpointError, TokenManager

T = TypeVar("T")


def classify_token_failure(error: TokenEndpointError) -> Classified:
    """What to do when the token endpoint gave no tokens."""
    action = Action.RETRY if error.transient else Action.FAIL
    return Classified(action, f"token endpoint failed: {describe(error)}")


class TokenEndpointDown(TokenEndpointError):
    """Another thread's refresh gave up (or was refused for good): not tried again here."""

    @property
    def transient(self) -> bool:
        return False


class Bearer:
    """The access token of one client's calls (one sync); threads fetching ahead share it."""

    def __init__(self, tokens: TokenManager) -> None:
        self.tokens = tokens
        self._lock = threading.Lock()  # one thread at a time decides the token (and refreshes)
        self._turn = threading.Condition(self._lock)  # the others wait out a failing refresh
        self._owner: int | None = None  # the thread retrying a failed refresh, if one is
        self._down: str | None = None  # why the refresh was given up: no thread tries again

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
                me = threading.get_ident()
                while self._owner not in (None, me):
                    self._turn.wait()
                if self._down is not None:
                    raise TokenEndpointDown(self._down)
                before = self.tokens.requests
                try:
                    if rejected is None:
                        token = self.tokens.access_token()  # may refresh ahead of expiry
                    else:
                        token = self.tokens.refresh(stale=rejected)
                        rejected = None
                except TokenEndpointError as exc:
                    if exc.transient:
                        self._owner = me  # this thread's policy retries it; the others wait
                    else:
                        self._give_up(f"token endpoint failed: {describe(exc)}")
                    raise
                finally:
                    token_requests += self.tokens.requests - before
                if self._owner == me:
                    self._owner = None
                    self._turn.notify_all()
            return send(token)

        def reject() -> None:  # the policy's answer to a 401: refresh in the next attempt
            nonlocal rejected
            rejected = token
            self.tokens.invalidate()

        def classified(error: BaseException) -> Classified:
            if isinstance(error, TokenEndpointDown):
                return Classified(Action.FAIL, str(error))
            if isinstance(error, TokenEndpointError):
                return classify_token_failure(error)
            return classify(error)

        try:
            result = retry.call(
                attempt,
                classified,
                refresh=reject,
                attempts=attempts,
                base_wait=base_wait,
                sleep=sleep,
                now=now,
            )
        except BaseException as exc:
            with self._lock:
                if self._owner == threading.get_ident():  # its refresh never came through
                    self._owner = None
                    if isinstance(exc, ConnectorError):  # the policy gave up on the endpoint
                        self._give_up(str(exc))
                    self._turn.notify_all()  # else (stopped, reconnect needed) the next tries
            raise
        return result, token_requests

    def _give_up(self, reason: str) -> None:
        """No thread asks the token endpoint again in this client's life (one sync). Under `_lock`."""
        self._down = reason
        self._turn.notify_all()
