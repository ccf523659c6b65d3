"""HEAD answered as GET without its body.

RFC 9110 (section 9.1): a general-purpose server supports HEAD wherever it supports GET.
FastAPI routes only the methods a route names, so `HEAD /healthz`, which uptime monitors
send, was a 405. A HEAD request goes in as GET; its answer keeps the status and headers
(`Content-Length` included) and loses the body, whichever ASGI server runs the app.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: HEAD is served by the GET route, and its body is dropped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headless)
