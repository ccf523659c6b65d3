"""The portal API's request bodies are small; a larger one is refused before anything reads it.

A portal call carries an email or an invitation token, a few hundred bytes. FastAPI reads
and parses a JSON body before it resolves the key check, so without a limit one request
with no key at all could make the server buffer and parse hundreds of megabytes before its
401. A body over `LIMIT` is answered 413 as soon as that is known: at once from a declared
`Content-Length`, else as its chunks pass the limit. The webhooks keep their own 1 MiB.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LIMIT = 16_384  # bytes: {"email"} is at most ~330, {"token"} ~530
PREFIX = "/v1/"


def route_path(scope: Scope) -> str:
    """The path as the routes see it: served under a root path (`uvicorn --root-path /api`),
    `scope["path"]` holds it too (`/api/v1/...`), and routing strips it (as Starlette does)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


class BodyLimit:
    """ASGI middleware: a `/v1/` request body over `LIMIT` bytes is a 413, never read whole."""

    def __init__(self, app: ASGIApp, *, limit: int = LIMIT) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route_path(scope).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # the app waits for a disconnect once the body is in
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        content = json.dumps({"error": f"body over {self.limit} bytes"}, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": content})
