"""SMTP delivery with aiosmtplib: a few reused connections, bounded concurrency.

A batch is shared by at most `concurrency` workers; each worker keeps one connection and
sends many messages through it (reconnecting after `messages_per_connection`, or after a
connection-level failure). Every message ends as a `SendResult`; retries follow
`RetryPolicy`. When a worker still cannot reach the server after its retries, the rest of
the batch is reported transient at once instead of waiting through every retry again.

Given a `halt` check (the dispatcher's: it is stopping, or the message's delivery window
has closed), each attempt of a message asks it first; a connection still being opened for
it (connect, greeting, EHLO, STARTTLS, AUTH: nothing of the message sent yet) is abandoned
as soon as it says so, and no retry begins; and it is asked again once the connection is
ready, just before MAIL (closing a used-up connection and opening one take time). Such a
message answers `UNSENT`. A server that accepts connections but never answers would
otherwise hold a stopping worker for every attempt's timeout (3 x 30 s). Once its MAIL
command is sent, a message is not halted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
from aiosmtplib import SMTPException, SMTPRecipientRefused, SMTPResponseException

from mailer.outgoing import Outgoing
from mailer.results import (
    NOT_STARTED,
    OnStart,
    Outcome,
    Refusal,
    SendResult,
    from_exception,
    from_refusals,
    from_reply,
)
from mailer.retry import POLL_SECONDS, RetryPolicy

Security = Literal["none", "starttls", "tls"]
HALTED = "not sent: given up before it began (the dispatcher stopping, or its window closed)"
_NETWORK_ERRORS = (SMTPException, OSError, TimeoutError)


@dataclass(slots=True)
class _Batch:
    queue: asyncio.Queue[tuple[int, Outgoing]]
    results: list[SendResult | None]
    unreachable: SendResult | None = None  # set once the server could not be reached
    on_start: OnStart | None = None  # the dispatcher's mark before each message
    halt: Callable[[str], bool] | None = None  # this message must not begin now


class _Halted(Exception):
    """A connection was abandoned while opening: its message must not begin now."""


@dataclass(slots=True)
class _Connection:
    """One worker's connection, opened lazily and reused across messages."""

    transport: SmtpTransport
    client: aiosmtplib.SMTP | None = None
    sent: int = 0

    async def ready(self, halted: Callable[[], bool] | None = None) -> aiosmtplib.SMTP:
        if self.client is not None and (
            not self.client.is_connected or self.sent >= self.transport.messages_per_connection
        ):
            await self.close()
        if self.client is None:
            client = self.transport.new_client()
            await _connect_unless(client, halted)
            self.client, self.sent = client, 0
            self.transport.connections_opened += 1
        return self.client

    def discard(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            try:
                await self.client.quit()
            except _NETWORK_ERRORS:
                self.client.close()
        self.client = None


async def _connect_unless(client: aiosmtplib.SMTP, halted: Callable[[], bool] | None) -> None:
    """`client.connect()` (also STARTTLS and AUTH, as configured), given up with `_Halted` as
    soon as `halted()` is true (looked at every `POLL_SECONDS`): nothing of a message is sent yet."""
    if halted is None:
        await client.connect()
        return
    connecting = asyncio.ensure_future(client.connect())
    while not connecting.done():
        if halted():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_NETWORK_ERRORS):
                await connecting
            client.close()
            raise _Halted
        await asyncio.wait({connecting}, timeout=POLL_SECONDS)
    connecting.result()


class SmtpTransport:
    """Delivers messages to one SMTP server (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        security: Security = "starttls",
        username: str = "",
        password: str = "",
        *,
        concurrency: int = 4,
        messages_per_connection: int = 100,
        start_group: int = 4,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"smtp security must be none, starttls or tls, not {security!r}")
        if concurrency < 1 or messages_per_connection < 1:
            raise ValueError("concurrency and messages_per_connection must be at least 1")
        self.host, self.port, self.security = host, port, security
        self._username, self._password = username, password
        self.concurrency = concurrency
        self.messages_per_connection = messages_per_connection
        self.start_group = max(1, start_group)  # messages marked `sending` per commit (see send_many)
        self.timeout = timeout
        self.retry = retry
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self.connections_opened = 0  # for logs and benchmarks

    def __repr__(self) -> str:  # never shows the password
        return f"SmtpTransport({self.host!r}, {self.port}, {self.security!r})"

    def new_client(self) -> aiosmtplib.SMTP:
        """A configured, unconnected client."""
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            username=self._username or None,
            password=self._password or None,
            timeout=self.timeout,
            tls_context=self._tls_context,
            local_hostname=self._local_hostname,
        )

    marks_start = True  # awaits `on_start` before each group of messages (`mailer.claim.start`)
    heeds_halt = True  # takes `halt`: asks it before each attempt (see the module docstring)

    async def send_many(
        self,
        messages: Sequence[Outgoing],
        on_start: OnStart | None = None,
        halt: Callable[[str], bool] | None = None,
    ) -> list[SendResult]:
        """Deliver `messages` through at most `concurrency` connections; results in order.
        A message for which `halt(message_id)` is true just before an attempt is `UNSENT`."""
        batch = _Batch(asyncio.Queue(), [None] * len(messages), on_start=on_start, halt=halt)
        for item in enumerate(messages):
            batch.queue.put_nowait(item)
        workers = min(self.concurrency, len(messages))
        await asyncio.gather(*(self._work(batch) for _ in range(workers)))
        return [result for result in batch.results if result is not None]

    async def _work(self, batch: _Batch) -> None:
        connection = _Connection(self)
        try:
            while not batch.queue.empty():
                taken = [batch.queue.get_nowait() for _ in range(min(self.start_group, batch.queue.qsize()))]
                held = await self._start([message for _, message in taken], batch)
                for index, message in taken:
                    batch.results[index] = await self._deliver(connection, message, batch, held)
        finally:
            await connection.close()

    async def _start(self, messages: list[Outgoing], batch: _Batch) -> set[str] | None:
        """The dispatcher's mark of the messages this connection takes up next (one commit for
        `start_group` of them); None when nobody asked to be told."""
        if batch.on_start is None or batch.unreachable is not None:
            return None
        return await batch.on_start([message.message_id for message in messages])

    async def _deliver(
        self, connection: _Connection, message: Outgoing, batch: _Batch, held: set[str] | None
    ) -> SendResult:
        if batch.unreachable is not None:
            detail = batch.unreachable.detail
            return SendResult(message.message_id, Outcome.TRANSIENT, None, detail, reached=False)
        if batch.on_start is not None and (held is None or message.message_id not in held):
            return SendResult(message.message_id, Outcome.TRANSIENT, None, NOT_STARTED)
        halt, message_id = batch.halt, message.message_id
        halted = (lambda: halt(message_id)) if halt is not None else None
        result = await self.retry.run(self._attempt, connection, message, halted, stop=halted)
        if result.outcome is Outcome.TRANSIENT and connection.client is None:
            batch.unreachable = result
        return result

    async def _attempt(
        self, connection: _Connection, message: Outgoing, halted: Callable[[], bool] | None
    ) -> SendResult:
        if halted is not None and halted():
            return SendResult(message.message_id, Outcome.UNSENT, None, HALTED)
        try:
            client = await connection.ready(halted)
        except _Halted:
            return SendResult(message.message_id, Outcome.UNSENT, None, HALTED)
        except _NETWORK_ERRORS as exc:
            # Includes refused logins and greetings: the message itself is not at fault.
            connection.discard()
            detail = f"cannot reach {self.host}:{self.port}: {type(exc).__name__}: {exc}"
            return SendResult(message.message_id, Outcome.TRANSIENT, None, detail, reached=False)
        if halted is not None and halted():  # asked again: a new connection (QUIT, connect,
            return SendResult(message.message_id, Outcome.UNSENT, None, HALTED)  # login) takes time
        result = await _transaction(client, message)
        if result.outcome in (Outcome.TRANSIENT, Outcome.IN_DOUBT) and not client.is_connected:
            connection.discard()
        connection.sent += 1
        return result


async def _transaction(client: aiosmtplib.SMTP, message: Outgoing) -> SendResult:
    """MAIL, RCPT for each recipient, DATA; classified by where it stopped."""
    message_id, body_sent = message.message_id, False
    try:
        options, encoding = [], "ascii"
        if message.utf8:
            if not client.supports_extension("smtputf8"):
                return SendResult(message_id, Outcome.PERMANENT, None, "server lacks SMTPUTF8")
            options, encoding = ["SMTPUTF8"], "utf-8"
        await client.mail(message.sender, options=options, encoding=encoding)
        refused = await _recipients(client, message.recipients, encoding)
        if len(refused) == len(message.recipients):
            await _reset(client)
            return from_refusals(message_id, refused)
        body_sent = True
        response = await client.data(message.data)
    except SMTPResponseException as exc:
        await _reset(client)
        return from_reply(message_id, exc.code, exc.message)
    except _NETWORK_ERRORS as exc:
        client.close()
        return from_exception(message_id, exc, body_sent=body_sent)
    refusals = tuple(Refusal(r, code, text) for r, (code, text) in refused.items())
    detail = response.message
    if refusals:
        detail += " (refused: " + "; ".join(map(str, refusals)) + ")"
    return SendResult(message_id, Outcome.DELIVERED, response.code, detail, refusals)


async def _recipients(
    client: aiosmtplib.SMTP, recipients: tuple[str, ...], encoding: str
) -> dict[str, tuple[int, str]]:
    refused: dict[str, tuple[int, str]] = {}
    for recipient in recipients:
        try:
            await client.rcpt(recipient, encoding=encoding)
        except SMTPRecipientRefused as exc:
            refused[recipient] = (exc.code, exc.message)
    return refused


async def _reset(client: aiosmtplib.SMTP) -> None:
    """RSET after a refusal so the reused connection starts the next message clean."""
    try:
        await client.rset()
    except _NETWORK_ERRORS:
        client.close()
