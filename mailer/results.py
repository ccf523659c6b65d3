"""What happened to one message, and the table from SMTP answers to outcomes.

Errors are data: a transport returns a `SendResult` per message instead of raising, and
the dispatcher turns each outcome into a row state (sent, retry later, failed, in doubt).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

OnStart = Callable[[Sequence[str]], Awaitable[set[str]]]
"""A transport awaits it with the Message-IDs it is about to send, just before they go out;
it answers those the dispatcher still holds: the others must not be sent (see
`mailer.claim.start`)."""
NOT_STARTED = "not sent: this dispatcher no longer holds the message"


class Outcome(StrEnum):
    DELIVERED = "delivered"  # the server accepted the message (for at least one recipient)
    TRANSIENT = "transient"  # not accepted, worth retrying: refused connection, 4xx, timeout
    PERMANENT = "permanent"  # refused for good: 5xx; the server's answer is recorded
    IN_DOUBT = "in_doubt"  # the connection failed after the body was sent: never re-send
    UNSENT = "unsent"  # given up before any of it reached the server (a stop): queued as it was


@dataclass(frozen=True, slots=True)
class Refusal:
    """One recipient the server refused at RCPT, with its answer."""

    recipient: str
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.recipient}: {self.code} {self.text}"


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome for one message, with the server's code and text when there was one.

    A message delivered to some recipients lists in `refused` those the server refused at
    RCPT: they did not get it, and those refused with a 4xx (`deferred`) are worth another try.
    A transient result with `reached` false says the mail server could not be reached at all.
    """

    message_id: str
    outcome: Outcome
    code: int | None = None
    detail: str = ""
    refused: tuple[Refusal, ...] = ()
    # False when the server was never reached for it (no connection, greeting or login):
    # the message is not at fault, so the try is not counted against it (`mailer.retry`)
    reached: bool = True

    def describe(self) -> str:
        """One line for `outbox.last_error` and logs, e.g. "550 5.1.1 no such user"."""
        return f"{self.code} {self.detail}".strip() if self.code else self.detail

    @property
    def deferred(self) -> tuple[str, ...]:
        """The refused recipients whose refusal was temporary (4xx): to try again later."""
        return tuple(r.recipient for r in self.refused if outcome_for_code(r.code) is Outcome.TRANSIENT)


def outcome_for_code(code: int) -> Outcome:
    """RFC 5321 reply classes: 2xx/3xx accepted, 4xx try again later, 5xx never."""
    if 200 <= code < 400:
        return Outcome.DELIVERED
    if 500 <= code < 600:
        return Outcome.PERMANENT
    return Outcome.TRANSIENT


def from_reply(message_id: str, code: int, text: str) -> SendResult:
    """A result built from one SMTP reply."""
    return SendResult(message_id, outcome_for_code(code), code, text)


def from_refusals(message_id: str, refusals: dict[str, tuple[int, str]]) -> SendResult:
    """All recipients refused: transient if any refusal was temporary, else permanent."""
    detail = "; ".join(f"{rcpt}: {code} {text}" for rcpt, (code, text) in refusals.items())
    codes = [code for code, _ in refusals.values()]
    transient = any(outcome_for_code(code) is Outcome.TRANSIENT for code in codes)
    outcome = Outcome.TRANSIENT if transient else Outcome.PERMANENT
    return SendResult(message_id, outcome, codes[0], f"all recipients refused: {detail}")


def from_exception(message_id: str, exc: BaseException, *, body_sent: bool) -> SendResult:
    """A failure without a reply (connection refused/reset, timeout, TLS).

    Before the body was handed over nothing was delivered, so it is transient; during
    or after DATA the server may have accepted it, so it is in doubt.
    """
    outcome = Outcome.IN_DOUBT if body_sent else Outcome.TRANSIENT
    return SendResult(message_id, outcome, None, f"{type(exc).__name__}: {exc}".strip())
