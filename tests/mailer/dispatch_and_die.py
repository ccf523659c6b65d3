"""Run by test_dispatch: a dispatcher killed (SIGKILL) after the server accepted its
batch but before it could record the answer.

    python -m tests.mailer.dispatch_and_die STORE_URL SMTP_PORT NOW_ISO
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime

from mailer.dispatch import dispatch
from mailer.outgoing import Outgoing
from mailer.results import SendResult
from mailer.smtp import SmtpTransport
from store.db import make_engine
from tests.mailer.conftest import no_window


class DeliverThenDie:
    def __init__(self, port: int) -> None:
        self.inner = SmtpTransport("127.0.0.1", port, "none", timeout=5)

    async def send_many(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        await self.inner.send_many(messages)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


if __name__ == "__main__":
    url, port, now = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    engine = make_engine(url)
    dispatch(engine, DeliverThenDie(port), now=now, window_for=no_window, worker_id="doomed")
