"""Health, readiness and metrics: no key needed (bind `[http] host` to an internal interface)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from store.db import current_revision, head_revision
from sync.http.auth import Context

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict:
    """200 while the process runs."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Store unreachable or not migrated"}})
def readyz(context: Context) -> JSONResponse:
    """200 only when the store is reachable and migrated to this code's schema."""
    try:
        revision = current_revision(context.engine)
    except SQLAlchemyError as exc:
        reason = f"store unreachable: {type(exc).__name__}"
        return JSONResponse({"status": "unavailable", "error": reason}, status_code=503)
    if revision != head_revision():
        reason = (
            f"store at revision {revision or 'none'}, code needs {head_revision()}: run `arsync db upgrade`"
        )
        return JSONResponse({"status": "unavailable", "error": reason}, status_code=503)
    return JSONResponse({"status": "ready", "revision": revision})


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(context: Context) -> Response:
    """Prometheus text format, per company: syncs by status, API calls, quarantine, outbox, mail in doubt."""
    try:
        text = generate_latest(context.registry)
    except SQLAlchemyError as exc:
        return JSONResponse({"error": f"store unavailable: {type(exc).__name__}"}, status_code=503)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
