"""Every QuickBooks Online failure classified once, as data: what happened -> `Action`.

python-quickbooks turns most failures into a `QuickbooksException` whose message holds the
response text, and drops the HTTP status and headers on the way. The client therefore wraps
each failed attempt in a `CallFailed` that keeps the SDK's exception together with the
status and Retry-After it saw; `RULES` reads both, first match wins. The retry policy
itself (attempts, backoff, honouring `retry_after`) is `connectors.retry`.
"""

from __future__ import annotations

from collections.abc import Callable

import requests
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from connectors.errors import Action, Classified, describe


class MalformedBody(ValueError):
    """A JSON answer without the envelope QuickBooks always sends (raised by the client)."""


class CallFailed(Exception):
    """One failed HTTP attempt: the SDK's (or requests') exception plus what the wire said."""

    def __init__(self, error: BaseException, status: int | None, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.status = status
        self.retry_after = retry_after

    @property
    def text(self) -> str:
        """The vendor's words: SDK message and detail, or the exception text."""
        return _words(self.error)


def _throttled(failure: CallFailed) -> bool:
    # 429 arrives as an XML ThrottleExceeded body the SDK cannot parse (a generic
    # QuickbooksException); a JSON fault with code 003001 would become a ValidationException.
    return failure.status == 429 or "ThrottleExceeded" in failure.text


def _unauthorized(failure: CallFailed) -> bool:
    error = failure.error
    if failure.status == 401:
        return True
    return isinstance(error, AuthorizationException) and error.error_code == 401


_TRANSIENT_IO = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _connection(failure: CallFailed) -> bool:
    return isinstance(failure.error, _TRANSIENT_IO)


def _server_error(failure: CallFailed) -> bool:
    return failure.status is not None and failure.status >= 500


def _malformed(failure: CallFailed) -> bool:
    # The SDK's words for a body that is not JSON (truncated, an HTML gateway page).
    return "Error reading json response" in failure.text or isinstance(failure.error, MalformedBody)


Rule = tuple[str, Callable[[CallFailed], bool], Action]

RULES: tuple[Rule, ...] = (
    ("QuickBooks throttled the request (HTTP 429 ThrottleExceeded)", _throttled, Action.RATE_LIMITED),
    ("QuickBooks refused the access token (HTTP 401)", _unauthorized, Action.REFRESH_TOKEN_THEN_RETRY),
    ("connection to QuickBooks failed", _connection, Action.RETRY),
    ("QuickBooks server error", _server_error, Action.RETRY),
    ("malformed response from QuickBooks", _malformed, Action.RETRY),
    ("QuickBooks refused the request", lambda failure: True, Action.FAIL),  # 400 validation, 403
)


def classify(error: BaseException) -> Classified:
    """What to do about `error` raised while talking to QuickBooks Online."""
    if not isinstance(error, CallFailed):
        return Classified(Action.FAIL, f"unexpected error: {_describe(error)}")
    for reason, matches, action in RULES:
        if matches(error):
            status = f" [HTTP {error.status}]" if error.status else ""
            retry_after = error.retry_after if action is Action.RATE_LIMITED else None
            return Classified(action, f"{reason}{status}: {_describe(error.error)}", retry_after)
    raise AssertionError("the last rule matches everything")  # pragma: no cover


def _words(error: BaseException) -> str:
    if isinstance(error, QuickbooksException):
        return f"{error.message} {error.detail}".strip()
    return str(error)


def _describe(error: BaseException) -> str:
    return describe(error, _words(error))
