"""Health, readiness and metrics: no key needed (bind `[http] host` to an internal interface)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from store.db import StoreNotMigrated, current_revision, head_revision, missing_sqlite_file
from sync.http.auth import Context
from sync.http.context import CompaniesUnreadable
from sync.http.schemas import ErrorOut, HealthOut, ReadyOut, UnreadyOut

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=HealthOut, operation_id="getHealth", summary="Liveness")
async def healthz() -> dict:
    """200 while the process runs: answered on the event loop, so it never waits for a
    thread while every handler thread waits for a busy store (a liveness probe's 1 s)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    operation_id="getReadiness",
    summary="Readiness: the store reachable and migrated",
    responses={
        503: {
            "model": UnreadyOut,
            "description": "Store missing, unreachable, busy or not migrated, or configuration error",
        }
    },
)
def readyz(context: Context) -> JSONResponse:
    """200 only when the store is reachable and migrated to this code's schema."""
    missing = missing_sqlite_file(context.config.store.url)  # serve never creates it
    if missing is not None:
        return _unready(f"no store at {missing}; run `arsync db upgrade`")
    try:
        revision = current_revision(context.engine)
    except PoolTimeout:  # reachable, but every connection of this server is taken
        return _unready("store busy: every connection of this server is in use")
    except SQLAlchemyError as exc:
        return _unready(f"store unreachable: {type(exc).__name__}")
    if revision != head_revision():
        return _unready(
            f"store at revision {revision or 'none'}, code needs {head_revision()}: run `arsync db upgrade`"
        )
    try:
        context.companies()
    except CompaniesUnreadable as exc:
        return _unready(f"configuration error: {exc}")
    except SQLAlchemyError as exc:
        return _unready(f"store unreachable: {type(exc).__name__}")
    return JSONResponse({"status": "ready", "revision": revision})


def _unready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "error": reason}, status_code=503)


@router.get(
    "/metrics",
    response_class=Response,
    operation_id="getMetrics",
    summary="Prometheus metrics",
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        503: {"model": ErrorOut, "description": "Store unreachable or not migrated, or configuration error"},
    },
)
def metrics(context: Context) -> Response:
    """Prometheus text format, per company: syncs by status, API calls, quarantine, outbox, mail in doubt."""
    try:
        text = generate_latest(context.registry)
    except (SQLAlchemyError, StoreNotMigrated) as exc:  # not migrated: the companies' read says so
        return JSONResponse({"error": f"store unavailable: {type(exc).__name__}"}, status_code=503)
    except CompaniesUnreadable as exc:
        return JSONResponse({"error": f"configuration error: {exc}"}, status_code=503)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
