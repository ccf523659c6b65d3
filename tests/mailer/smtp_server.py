"""A real SMTP server on loopback (aiosmtpd) with handlers that record, defer or refuse."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: tuple


@dataclass
class Recorder:
    """Accepts everything and keeps every envelope; `peers` counts connections."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        answer = self.answer(parsed)
        if answer.startswith("250"):
            with self.lock:
                self.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, session.peer)
                )
        return answer

    def answer(self, message: EmailMessage) -> str:
        return "250 2.0.0 Ok: queued"

    @property
    def peers(self) -> set[tuple]:
        return {r.peer for r in self.received}

    def by_message_id(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.received:
            counts[r.message["Message-ID"]] = counts.get(r.message["Message-ID"], 0) + 1
        return counts


@dataclass
class Deferring(Recorder):
    """Answers 451 to the first `failures` DATA commands, then accepts."""

    failures: int = 1
    deferred_ids: list[str] = field(default_factory=list)

    @property
    def deferred(self) -> int:
        return len(self.deferred_ids)

    def answer(self, message: EmailMessage) -> str:
        with self.lock:
            if self.deferred < self.failures:
                self.deferred_ids.append(message["Message-ID"])
                return "451 4.3.0 Temporary local problem, try again"
        return super().answer(message)


@dataclass
class Refusing(Recorder):
    """Refuses every message for good."""

    def answer(self, message: EmailMessage) -> str:
        return "550 5.7.1 Message rejected as spam"


class HangsUpAfterData(Recorder):
    """Takes the message, then drops the connection instead of answering."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        server.transport.close()
        return "250 never seen by the client"


class LoopbackController(Controller):
    """aiosmtpd's Controller on an ephemeral loopback port (or a fixed one, to restart)."""

    def __init__(self, handler, port: int = 0, **kwargs) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port, **kwargs)

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
