"""Run by test_fleet_mail: a dispatcher killed (SIGKILL) as its third message is about to leave.

Messages go one at a time (one connection, each marked on its own); the first two reached
the server, the third was marked `sending` and then the process died, the rest of the
batch never began.

    python -m tests.fleet.dispatch_die_mid_batch STORE_URL SMTP_PORT NOW_ISO
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime

from mailer.dispatch import dispatch
from mailer.outgoing import Outgoing
from mailer.results import OnStart, SendResult
from mailer.smtp import SmtpTransport
from store.db import make_engine
from tests.mailer.conftest import no_window

DIE_AT = 3


class DieAtThirdStart:
    marks_start = True

    def __init__(self, port: int) -> None:
        self.inner = SmtpTransport("127.0.0.1", port, "none", timeout=5, concurrency=1, start_group=1)

    async def send_many(
        self, messages: Sequence[Outgoing], on_start: OnStart | None = None
    ) -> list[SendResult]:
        started = 0

        async def mark_then_maybe_die(message_ids: Sequence[str]) -> set[str]:
            nonlocal started
            assert on_start is not None
            held = await on_start(message_ids)
            started += len(message_ids)
            if started >= DIE_AT:
                os.kill(os.getpid(), signal.SIGKILL)
            return held

        return await self.inner.send_many(messages, on_start=mark_then_maybe_die)


if __name__ == "__main__":
    url, port, now = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    dispatch(make_engine(url), DieAtThirdStart(port), now=now, window_for=no_window, worker_id="doomed")
