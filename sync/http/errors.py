"""Every error answer is JSON `{"error": "..."}` in one line: never HTML, never a traceback."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout  # every pooled connection in use past the wait
from starlette.exceptions import HTTPException

from store.db import StoreNotMigrated
from sync.http.context import CompaniesUnreadable

log = structlog.get_logger("arsync.http")


BODY_PROBLEMS = {
    "json_invalid": "not valid JSON",
    "model_attributes_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "missing": "missing (a JSON object is expected)",
}


# FastAPI's 400 for a body its JSON decoder raised on (invalid UTF-8, nesting too deep),
# where malformed JSON gets a validation error: both are malformed input (422)
_UNPARSEABLE_BODY = "There was an error parsing the body"


class Problem(HTTPException):
    """An error answer with its status and message (and optional headers)."""


def install_error_handlers(app: FastAPI) -> None:
    # RequestValidationError, and HTTPException again: `sync.http.auth.install_key_first`,
    # after the key check
    app.add_exception_handler(HTTPException, answer_problem)
    app.add_exception_handler(DBAPIError, answer_store_error)
    app.add_exception_handler(StoreNotMigrated, answer_store_error)
    app.add_exception_handler(PoolTimeout, answer_store_error)
    app.add_exception_handler(CompaniesUnreadable, answer_companies_unreadable)
    # A last resort for the outer layers: `sync.http.unexpected` answers the routes' errors
    app.add_exception_handler(Exception, _unexpected)


async def answer_problem(_request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else "error"
    if unparseable_body(exc):  # bytes no JSON decoder reads
        return JSONResponse({"error": f"request body: {BODY_PROBLEMS['json_invalid']}"}, status_code=422)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "not found"
    elif exc.status_code == 405:
        detail = "method not allowed"
        return JSONResponse({"error": detail}, status_code=405, headers=_with_head(exc.headers or {}))
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)


def unparseable_body(exc: HTTPException) -> bool:
    """Whether `exc` is FastAPI's refusal of a body its JSON decoder raised on."""
    return exc.status_code == 400 and exc.detail == _UNPARSEABLE_BODY


def _with_head(headers: dict[str, str]) -> dict[str, str]:
    """A 405's `Allow` names HEAD wherever GET is allowed: `sync.http.head` serves it."""
    allowed = [method.strip() for method in headers.get("Allow", "").split(",") if method.strip()]
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return {**headers, "Allow": ", ".join(allowed)} if allowed else headers


async def answer_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    message = validation_message(exc)
    if message == _NOT_AN_OBJECT and isinstance(exc.errors()[0].get("input"), bytes):
        # FastAPI reads only a JSON content type as JSON: a JSON object sent as text/plain, as a
        # form or with no content type (as Java's HttpClient sends a string) arrives as the raw
        # bytes, and "expected a JSON object" alone misleads. Parsed JSON is never bytes.
        message += " (send it with Content-Type: application/json)"
    return JSONResponse({"error": message}, status_code=422)


_NOT_AN_OBJECT = f"request body: {BODY_PROBLEMS['dict_type']}"


async def answer_companies_unreadable(_request: Request, exc: Exception) -> JSONResponse:
    """The companies do not read as one set (an id both in the file and the store): no answer
    about any company can be trusted until an operator fixes it (503, as `/readyz` says)."""
    return JSONResponse(
        {"error": f"configuration error: {exc}"}, status_code=503, headers={"Retry-After": "30"}
    )


async def answer_store_error(request: Request, exc: Exception) -> JSONResponse:
    """The store, not the request, failed: 503 (unreachable, locked, not migrated), as
    `/readyz` and the webhooks answer; text PostgreSQL cannot hold is the request's: 422.

    Handled here rather than as a bug (500): Starlette re-raises what only the catch-all
    handler answered, and uvicorn then drops the client's keep-alive connection.
    """
    cause = getattr(exc, "orig", None) or exc
    if isinstance(exc, DataError) and "NUL" in str(cause):
        return JSONResponse({"error": "text must not contain NUL characters"}, status_code=422)
    if isinstance(exc, StoreNotMigrated | OperationalError | ProgrammingError | InterfaceError | PoolTimeout):
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        log.error("http.store_unavailable", path=request.url.path, error=f"{type(cause).__name__}: {first}")
        return JSONResponse({"error": "store unavailable"}, status_code=503, headers={"Retry-After": "5"})
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("http.unexpected_error", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
    return JSONResponse({"error": "internal error"}, status_code=500)


def validation_message(exc: RequestValidationError) -> str:
    """The first problem, naming where it is: `query parameter 'on': not a valid date`."""
    error = exc.errors()[0]
    where, *path = error.get("loc", ("request",))
    if (
        where == "body"
        and error.get("type") in BODY_PROBLEMS
        and (not path or error["type"] == "json_invalid")
    ):
        return f"request body: {BODY_PROBLEMS[error['type']]}"
    name = ".".join(str(p) for p in path)
    place = {"query": "query parameter", "path": "path parameter", "body": "body field", "header": "header"}
    label = f"{place.get(where, where)} {name!r}" if name else "request body"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{label}: {message[:200]}"
