"""Answers that leave at a fixed time after the request came in, whatever happened meanwhile.

A portal's anonymous visitor can reach two routes through its pages: request access and
accepting an invitation. Both do the same statements whatever the email or token, but what
runs beside them does not: after a customer's email the worker issues and mails an
invitation, and a request arriving then waits a few milliseconds longer (SQLite's one
writer, the machine's cores). Those milliseconds told a customer's email from a stranger's.
Every answer of these routes, refusals included (401, 413, 422, 503), now leaves `STEADY`
after the request came in: reading the body, the key check and the work all fall inside.
The time is spent asleep, holding no thread.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STEADY = 0.25  # seconds: far above the few milliseconds such a wait costs, unnoticed by a person
ROUTES = ("/request-access", "/invitations/accept")


class SteadyAnswers:
    """ASGI middleware: a POST to one of `ROUTES` starts its answer `seconds` after it came in."""

    def __init__(self, app: ASGIApp, *, seconds: float = STEADY) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(ROUTES):
            await self.app(scope, receive, send)
            return
        due = time.monotonic() + self.seconds

        async def send_when_due(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await send(message)

        await self.app(scope, receive, send_when_due)
