"""How rendered messages leave arsync: the `Transport` protocol and the file transport.

`SmtpTransport` lives in `mailer.smtp` and is re-exported here, so callers pick a
transport from one place.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from mailer.outgoing import Outgoing
from mailer.results import NOT_STARTED, OnStart, Outcome, SendResult
from mailer.smtp import SmtpTransport

__all__ = ["FileTransport", "OnStart", "Outgoing", "SmtpTransport", "Transport", "eml_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


class Transport(Protocol):
    """Delivers a batch of messages and reports one result per message, in order.

    A transport whose `marks_start` is true also takes `on_start` and awaits it before
    each message (see `mailer.claim.start`); others have the whole batch marked at once.
    One whose `heeds_halt` is true also takes `halt` and asks it just before each message (and
    while connecting for it): a message it says must not begin now (the dispatcher stopping,
    its window closed) answers `Outcome.UNSENT`, and is queued again as it was.
    """

    async def send_many(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        """Deliver `messages`; never raises for a per-message failure."""
        ...


def eml_name(message_id: str) -> str:
    """A file name made only of safe characters, unique per Message-ID."""
    bare = message_id.strip().strip("<>")
    safe = _UNSAFE.sub("_", bare).strip("._")[:150] or "message"
    if safe != bare:  # sanitizing may merge distinct ids: keep them apart
        safe += "-" + hashlib.sha256(message_id.encode()).hexdigest()[:12]
    return f"{safe}.eml"


class FileTransport:
    """Writes each message to `directory/<message-id>.eml` (the demo and development).

    Writes are atomic (temporary file, fsync, rename); writing the same message again
    replaces the file with identical content, so a retry never makes a second file.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    marks_start = True

    async def send_many(
        self, messages: Sequence[Outgoing], on_start: OnStart | None = None
    ) -> list[SendResult]:
        results = []
        for message in messages:
            if on_start is not None and message.message_id not in await on_start([message.message_id]):
                results.append(SendResult(message.message_id, Outcome.TRANSIENT, None, NOT_STARTED))
            else:
                results.append(await asyncio.to_thread(self._write, message))
        return results

    def _write(self, message: Outgoing) -> SendResult:
        message_id = message.message_id
        if not message_id:
            return SendResult("", Outcome.PERMANENT, None, "message has no Message-ID")
        try:
            folder = self.directory.resolve()  # "mail/../outbox": no empty mail/ made on the way
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(folder / eml_name(message_id), message.data)
        except OSError as exc:
            return SendResult(message_id, Outcome.TRANSIENT, None, f"{type(exc).__name__}: {exc}")
        return SendResult(message_id, Outcome.DELIVERED)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
