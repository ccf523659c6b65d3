"""Every Xero failure classified once, as data: exception or HTTP status -> `Action`.

The retry policy itself (attempts, backoff, honouring `retry_after`) is `connectors.retry`.
Xero's 429 says which limit was hit in `X-Rate-Limit-Problem`: the minute, concurrency and
app-minute limits are waited out (Retry-After); the day limit stops this company's sync
until the reset. Its 403 `AuthenticationUnsuccessful` means the tokens may not read the
organisation, which only a new consent (or the right `tenant_id`) mends: the reason says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import urllib3
from xero_python.exceptions import ApiException

from connectors.base import ReconnectNeeded
from connectors.errors import Action, Classified, describe, retry_after_seconds

# Checked in order: the first matching row wins. Token-endpoint failures are classified by
# `connectors.bearer`, the same for every connector.
EXCEPTION_TABLE: tuple[tuple[type[BaseException], Action, str], ...] = (
    (ReconnectNeeded, Action.FAIL, "the refresh token was refused"),
    (urllib3.exceptions.HTTPError, Action.RETRY, "connection error"),
    (OSError, Action.RETRY, "connection error"),
    (ValueError, Action.RETRY, "malformed response body"),  # json.JSONDecodeError, MalformedBody
)

STATUS_TABLE: dict[int, Action] = {
    401: Action.REFRESH_TOKEN_THEN_RETRY,  # TokenExpired before our expiry said so
    408: Action.RETRY,
}

# Xero's troubleshooting page: the tenant id is missing, wrong, or no longer authorised for
# these tokens (the app was disconnected, the connecting user lost access or the right to
# connect apps, the organisation was deleted or its trial ended). Refreshing still works, so
# nothing else would tell the admin why every sync fails.
TENANT_REFUSED = (
    "Xero does not let this connection read the organisation in connection.tenant_id (HTTP 403 "
    "{detail}): the organisation was disconnected from the app in Xero, the user who connected "
    "it lost access, or it no longer exists; or tenant_id names another one. Reconnect with "
    "`arsync auth connect {company}`, which lists the organisations the connection may read"
)

RATE_LIMIT_TABLE: dict[str, Action] = {
    "minute": Action.RATE_LIMITED,
    "concurrent": Action.RATE_LIMITED,
    "appminute": Action.RATE_LIMITED,
    "day": Action.DAILY_LIMIT,
}


def classify(error: BaseException, *, company: str) -> Classified:
    """What to do about `error` raised while talking to Xero for `company` (its id)."""
    if isinstance(error, ApiException) and error.status:
        return _classify_status(error, company)
    for kind, action, reason in EXCEPTION_TABLE:
        if isinstance(error, kind):
            return Classified(action, f"{reason}: {describe(error)}")
    return Classified(Action.FAIL, f"unexpected error: {describe(error)}")


def _classify_status(error: ApiException, company: str) -> Classified:
    status = int(error.status)
    headers = _headers(error)
    retry_after = retry_after_seconds(headers.get("retry-after"))
    detail = _detail(error)
    if status == 429:
        problem = (headers.get("x-rate-limit-problem") or "minute").lower()
        action = RATE_LIMIT_TABLE.get(problem, Action.RATE_LIMITED)
        what = "daily" if action is Action.DAILY_LIMIT else problem
        return Classified(action, f"Xero {what} rate limit reached (HTTP 429)", retry_after)
    if status in STATUS_TABLE:
        return Classified(STATUS_TABLE[status], f"HTTP {status}: {detail}", retry_after)
    if status >= 500:
        return Classified(Action.RETRY, f"Xero answered HTTP {status}: {detail}", retry_after)
    if status == 403 and detail == "AuthenticationUnsuccessful":
        return Classified(Action.FAIL, TENANT_REFUSED.format(detail=detail, company=company))
    return Classified(Action.FAIL, f"Xero refused the request (HTTP {status}): {detail}")


def _headers(error: ApiException) -> Mapping[str, str]:
    try:
        raw = error.headers or {}
    except Exception:  # a response without headers (connection-level ApiException)
        raw = {}
    return {str(name).lower(): str(value) for name, value in dict(raw).items()}


def _detail(error: ApiException) -> str:
    """Xero's problem `Detail`/`Message` when the body has one, else the HTTP reason."""
    try:
        body = json.loads(error.body or b"{}")
    except (ValueError, TypeError):
        body = {}
    if isinstance(body, dict):
        for key in ("Detail", "Message", "Title"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return str(error.reason or "no detail")
