"""OPTIONS answered with the methods a path allows.

RFC 9110 (section 9.3.7): OPTIONS asks what a resource supports; the answer's `Allow` says
it. FastAPI routes only the methods a route names, so OPTIONS was a 405 everywhere. The
router's own 405 already names the path's methods (with HEAD wherever GET: see
`sync.http.errors`), so an OPTIONS request goes on to the app, and its 405 becomes a 204
whose `Allow` adds OPTIONS; a path no route matches stays a 404. No key is needed: the
answer tells which methods exist, nothing of any company.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class OptionsAllowed:
    """ASGI middleware: OPTIONS on a routed path is a 204 naming its methods in `Allow`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        allowed = False

        async def answer(message: Message) -> None:
            nonlocal allowed
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = True
                methods = [
                    value.decode() for name, value in message.get("headers", []) if name.lower() == b"allow"
                ]
                allow = ", ".join([*methods, "OPTIONS"]).encode()
                message = {"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]}
            elif message["type"] == "http.response.body" and allowed:
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, answer)
