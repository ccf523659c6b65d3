"""`/webhooks/quickbooks` and `/webhooks/xero`: signed change notifications become sync requests.

A notification never runs a sync here: each company connected to a named realm or tenant
gets a coalesced request that a running worker (`arsync run`) picks up within seconds, so
the answer (200, empty) comes at once and a replayed or repeated body costs nothing more
than one pending request. Unknown realms and tenants are ignored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import anyio
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from sync.http import webhook_schemas
from sync.http.context import ServerContext
from sync.http.errors import Problem
from sync.http.schemas import ErrorOut
from sync.http.webhook_events import MAX_BODY, Named, quickbooks_realms, signature_ok, xero_tenants

log = structlog.get_logger("arsync.http.webhooks")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
# Seconds the answer waits for the requests to be committed. SPEC section 12 wants the
# answer within a second (Intuit within 3 s, Xero within 5 s). A write on SQLite waits behind
# the store's one writer (a sync's page commit: milliseconds); a store locked longer than
# this gets a 503 and the vendor's delivery again, never a 200 for requests not recorded.
REQUEST_WAIT = 0.8
SLOT_POLL = 0.005  # seconds between looks for a free recording slot (`ServerContext.recordings`)
SIGNED = {
    200: {"description": "Signature good: syncs requested (empty body)"},
    401: {"description": "Bad or missing signature (empty body); nothing changes"},
    503: {"description": "The store could not record the requests (empty body): deliver again"},
    404: {"model": ErrorOut, "description": "This webhook is not enabled in `[http]`"},
    413: {"model": ErrorOut, "description": "Body over 1 MiB"},
}


@router.post(
    "/quickbooks",
    status_code=200,
    operation_id="receiveQuickBooksWebhook",
    summary="QuickBooks Online webhook",
    responses=SIGNED,
    response_class=Response,
    openapi_extra=webhook_schemas.QUICKBOOKS,
)
async def quickbooks(request: Request) -> Response:
    """Intuit's notification, legacy `eventNotifications` or CloudEvents; header `intuit-signature`."""
    context: ServerContext = request.app.state.context
    return await _receive(
        request, "quickbooks", context.secrets.quickbooks, "intuit-signature", quickbooks_realms
    )


@router.post(
    "/xero",
    status_code=200,
    operation_id="receiveXeroWebhook",
    summary="Xero webhook",
    responses=SIGNED,
    response_class=Response,
    openapi_extra=webhook_schemas.XERO,
)
async def xero(request: Request) -> Response:
    """Xero's notification, including its "intent to receive" check; header `x-xero-signature`."""
    context: ServerContext = request.app.state.context
    return await _receive(request, "xero", context.secrets.xero, "x-xero-signature", xero_tenants)


async def _receive(
    request: Request, kind: str, secret: str, header: str, sources: Callable[[bytes], Named]
) -> Response:
    if not secret:
        raise Problem(404, f"the {kind} webhook is not enabled")
    try:
        body = await read_limited(request, MAX_BODY)
    except ClientDisconnect:  # the sender went away mid-body: nobody reads an answer, nothing changes
        log.info("webhook.client_disconnected", kind=kind)
        return Response(status_code=400)
    if not signature_ok(secret, body, request.headers.get(header)):
        log.warning("webhook.bad_signature", kind=kind, bytes=len(body))
        return Response(status_code=401)
    context: ServerContext = request.app.state.context
    named = sources(body)
    if named.unread is not None:  # signed, so answered as one; an operator should still hear of it
        log.warning("webhook.unreadable", kind=kind, bytes=len(body), problem=named.unread, synced="none")
    if named.ids:
        recording = None
        with anyio.move_on_after(REQUEST_WAIT):
            # At most RECORDINGS_AT_ONCE wait for the store at once: a locked store's webhooks
            # would otherwise take every connection the portal's reads need.
            while not context.recordings.acquire(blocking=False):
                await anyio.sleep(SLOT_POLL)
            recording = Recording(
                partial(context.request_syncs_for, kind, named.ids), context.recordings.release
            )
            await anyio.to_thread.run_sync(recording.run, abandon_on_cancel=True)
        if recording is None:
            log.warning("webhook.store_busy", kind=kind, answer=503)
            return Response(status_code=503)
        if not recording.answer():
            return Response(status_code=503)  # not recorded (yet): the vendor delivers it again
    return Response(status_code=200)


class Recording:
    """Records the sync requests of one notification in a thread; the answer is a 200 only
    once they are committed, so no 200 ever stands for a lost request.

    Not recorded when the answer goes (the store down, or locked past `REQUEST_WAIT`): 503,
    and Intuit and Xero deliver the notification again. An attempt still waiting for the
    store then may yet succeed; the delivery again finds its requests there (they coalesce).
    It waits no longer than the server's store wait (`STORE_WAIT`, a lock or a connection),
    and holds one of the server's recording slots until it ends (`done`, called once); one
    not begun when the answer went is not begun at all.
    """

    def __init__(self, record: Callable[[], object], done: Callable[[], object]) -> None:
        self.record = record
        self.done = done
        self.lock = threading.Lock()
        self.answered = self.recorded = self.begun = False

    def run(self) -> None:
        with self.lock:
            if self.answered:  # the answer (503) went before a thread was free: nothing to do
                return
            self.begun = True
        try:
            self.record()
        except Exception as exc:  # noqa: BLE001  (the store unreachable or locked: any kind)
            log.error("webhook.requests_not_recorded", error=f"{type(exc).__name__}: {exc}", answer=503)
            return
        finally:
            self.done()
        with self.lock:
            self.recorded = True
            if self.answered:  # after a 503: the vendor's next delivery changes nothing
                log.info("webhook.requests_recorded_late")

    def answer(self) -> bool:
        """Called when the answer goes: whether the requests are committed (else 503)."""
        with self.lock:
            self.answered = True
            if not self.begun:
                self.done()  # never to begin: its slot is free again
            return self.recorded


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
