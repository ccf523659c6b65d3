"""`/webhooks/quickbooks` and `/webhooks/xero`: signed change notifications become sync requests.

A notification never runs a sync here: each company connected to a named realm or tenant
gets a coalesced request that a running worker (`arsync run`) picks up within seconds, so
the answer (200, empty) comes at once and a replayed or repeated body costs nothing more
than one pending request. Unknown realms and tenants are ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

import anyio
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from sync.http.context import ServerContext
from sync.http.errors import Problem
from sync.http.webhook_events import MAX_BODY, quickbooks_realms, signature_ok, xero_tenants

log = structlog.get_logger("arsync.http.webhooks")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
REQUEST_WAIT = 0.8  # seconds: both vendors want the answer fast (Xero: within 5 s, Intuit: 3 s)
RETRY_FOR = 60.0  # seconds: requests that failed after a 200 are retried this long
SIGNED = {
    200: {"description": "Signature good: syncs requested (empty body)"},
    401: {"description": "Bad or missing signature (empty body); nothing changes"},
    503: {"description": "The store could not record the requests (empty body): deliver again"},
    404: {"description": "This webhook is not enabled in `[http]`"},
    413: {"description": "Body over 1 MiB"},
}


@router.post("/quickbooks", status_code=200, responses=SIGNED, response_class=Response)
async def quickbooks(request: Request) -> Response:
    """Intuit's notification, legacy `eventNotifications` or CloudEvents; header `intuit-signature`."""
    context: ServerContext = request.app.state.context
    return await _receive(
        request, "quickbooks", context.secrets.quickbooks, "intuit-signature", quickbooks_realms
    )


@router.post("/xero", status_code=200, responses=SIGNED, response_class=Response)
async def xero(request: Request) -> Response:
    """Xero's notification, including its "intent to receive" check; header `x-xero-signature`."""
    context: ServerContext = request.app.state.context
    return await _receive(request, "xero", context.secrets.xero, "x-xero-signature", xero_tenants)


async def _receive(
    request: Request, kind: str, secret: str, header: str, sources: Callable[[bytes], set[str]]
) -> Response:
    if not secret:
        raise Problem(404, f"the {kind} webhook is not enabled")
    body = await read_limited(request, MAX_BODY)
    if not signature_ok(secret, body, request.headers.get(header)):
        log.warning("webhook.bad_signature", kind=kind, bytes=len(body))
        return Response(status_code=401)
    context: ServerContext = request.app.state.context
    named = sources(body)
    if named:
        # The answer waits for the requests at most REQUEST_WAIT: behind a long write on SQLite
        # (one writer at a time) they are recorded by the thread after the answer has gone.
        recording = Recording(partial(context.request_syncs_for, kind, named))
        with anyio.move_on_after(REQUEST_WAIT):
            await anyio.to_thread.run_sync(recording.run, abandon_on_cancel=True)
        if not recording.answer():
            return Response(status_code=503)  # nothing recorded: the vendor delivers it again
    return Response(status_code=200)


class Recording:
    """Records the sync requests of one notification, in a thread, without losing them.

    A failure before the answer makes it a 503 (Intuit and Xero deliver again; a replay is
    harmless); after a 200 has gone, nobody would deliver again, so it retries for a while.
    """

    def __init__(self, record: Callable[[], object]) -> None:
        self.record = record
        self.lock = threading.Lock()
        self.answered = self.failed = False

    def run(self) -> None:
        delay, deadline = 0.5, time.monotonic() + RETRY_FOR
        while True:
            try:
                self.record()
                return
            except Exception as exc:  # noqa: BLE001  (the store unreachable or locked: any kind)
                error = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    if not self.answered:
                        self.failed = True
                        log.error("webhook.requests_not_recorded", error=error, answer=503)
                        return
                if time.monotonic() + delay > deadline:
                    log.error("webhook.requests_lost", error=error, note="the scheduled sync catches up")
                    return
                log.warning("webhook.requests_retrying", error=error, retry_in=delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def answer(self) -> bool:
        """Called when the answer goes: False if the requests failed before it (answer 503)."""
        with self.lock:
            self.answered = True
            return not self.failed


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"body over {limit} bytes")
    return bytes(body)
