"""The portal API's key check: a FastAPI dependency giving the one company the key may reach.

Order matters for enumeration: the key is checked first (401 without a valid one, whatever
the path), then the company; a company the key does not belong to answers 404 exactly as
an unknown one does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from store.api_keys import company_for_key
from store.db import StoreNotMigrated
from sync.config import CompanyConfig
from sync.http.context import CompaniesUnreadable, ServerContext, server_context
from sync.http.errors import (
    Problem,
    answer_companies_unreadable,
    answer_problem,
    answer_store_error,
    answer_validation_error,
    unparseable_body,
)

bearer = HTTPBearer(auto_error=False, description="A key from `arsync portal api-key create COMPANY`.")


def unauthorized() -> Problem:
    return Problem(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})


def company_access(
    company: Annotated[str, Path(description="The company id from the arsync configuration.")],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    context: Annotated[ServerContext, Depends(server_context)],
) -> CompanyConfig:
    """The company of the path, if the presented key belongs to it."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    owner = company_for_key(context.engine, credentials.credentials)
    if owner is None:
        raise unauthorized()
    config = context.company(company)
    if owner != company or config is None:
        raise Problem(404, "no such company")
    return config


Company = Annotated[CompanyConfig, Depends(company_access)]
Context = Annotated[ServerContext, Depends(server_context)]


def install_key_first(app: FastAPI) -> None:
    """Malformed input to a keyed route is answered after the key check, as everything else
    is: FastAPI reads a JSON body before it resolves dependencies, so malformed JSON from a
    caller without a valid key was told 422 (what the route expects) instead of 401. Bytes
    FastAPI's JSON decoder raises on (invalid UTF-8, nesting too deep) come as its 400, not
    as a validation error: they wait for the key check too."""

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _key_first(request) or await answer_validation_error(request, exc)

    async def problem(request: Request, exc: HTTPException) -> JSONResponse:
        if unparseable_body(exc):
            return await _key_first(request) or await answer_problem(request, exc)
        return await answer_problem(request, exc)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, problem)


async def _key_first(request: Request) -> JSONResponse | None:
    """The answer of a keyed route's key check if it refuses the request, else None."""
    company = request.path_params.get("company")
    if company is None:
        return None
    try:
        credentials, context = await bearer(request), await server_context(request)
        await run_in_threadpool(company_access, company, credentials, context)  # reads the store
    except Problem as problem:
        return await answer_problem(request, problem)
    except (DBAPIError, StoreNotMigrated, PoolTimeout) as failure:  # the store, not the caller
        return await answer_store_error(request, failure)
    except CompaniesUnreadable as failure:  # the configuration, not the caller
        return await answer_companies_unreadable(request, failure)
    return None
