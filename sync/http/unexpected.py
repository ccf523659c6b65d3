"""An unexpected error is answered like any other: one JSON line, in its time, keep-alive kept.

Starlette answers what only its catch-all handler can from its outermost layer, then raises
the error again: the 500 skipped every layer inside (`sync.http.steady`'s fixed time among
them, so a refusal told itself apart by its speed) and uvicorn, seeing the error, dropped the
client's keep-alive connection. This layer, the innermost of ours, answers it instead.
"""

from __future__ import annotations

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("arsync.http")


class UnexpectedErrors:
    """ASGI middleware: an error no handler answered becomes a 500 `{"error": "internal error"}`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # half an answer is out: only a dropped connection tells the client
                raise
            error = f"{type(exc).__name__}: {exc}"
            log.error("http.unexpected_error", path=scope["path"], error=error, exc_info=exc)
            await JSONResponse({"error": "internal error"}, status_code=500)(scope, receive, send)
