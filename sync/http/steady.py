"""Answers that leave at a fixed time after they began, whatever happened meanwhile.

A portal's anonymous visitor can reach two routes through its pages: request access and
accepting an invitation. Both do the same statements whatever the email or token, but what
runs beside them does not: after a customer's email the worker issues and mails an
invitation, and a request arriving then waits a few milliseconds longer (SQLite's one
writer, or the machine's cores). Those milliseconds told a customer's email from a
stranger's. Each of these answers now leaves `STEADY` after its work began, so a wait
shorter than that shows nowhere; the time is spent asleep, holding no thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

STEADY = 0.25  # seconds: far above the few milliseconds such a wait costs, unnoticed by a person


@asynccontextmanager
async def steady_answer(seconds: float = STEADY) -> AsyncIterator[None]:
    """Run the body, then sleep until `seconds` after it began (on errors too)."""
    began = time.monotonic()
    try:
        yield
    finally:
        await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))
