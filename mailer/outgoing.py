"""A message as a transport takes it: envelope plus the exact bytes to hand over.

Transports never re-parse or re-serialize a message: the outbox stores the rendered
message once, and the dispatcher sends those bytes (parsing and re-flattening 10,000
messages with `email` would cost more than the SMTP conversation itself), only its Date
header line replaced by the time it leaves.
"""

from __future__ import annotations

import copy
import email.policy
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import HeaderParser
from email.utils import format_datetime, getaddresses

_HEADERS_ONLY = HeaderParser(policy=email.policy.compat32)  # fast: no header objects
# The Date header with its folded continuation lines, if any (a header line's name is matched
# at a line's start only; the block searched holds the header lines alone).
_DATE = re.compile(r"^Date:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """MAIL FROM, RCPT TO, and the RFC 5322 message with CRLF line endings."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes

    @property
    def utf8(self) -> bool:
        """Whether an address needs SMTPUTF8."""
        return not (self.sender + "".join(self.recipients)).isascii()

    @classmethod
    def from_message(cls, message: EmailMessage) -> Outgoing:
        """From a rendered message: sender from From, recipients from To/Cc/Bcc (Bcc not sent)."""
        recipients = tuple(
            address.addr_spec
            for name in ("To", "Cc", "Bcc")
            for header in message.get_all(name, [])
            for address in header.addresses
        )
        if message.get_all("Bcc"):
            message = copy.copy(message)
            del message["Bcc"]
        if not recipients or message["From"] is None:
            raise ValueError("a message needs a From address and at least one recipient")
        sender = message["From"].addresses[0].addr_spec
        utf8 = not (sender + "".join(recipients)).isascii()
        data = message.as_bytes(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
        return cls(str(message["Message-ID"]), sender, recipients, data)

    @classmethod
    def from_stored(
        cls, message_id: str, recipient: str, payload: str, dated: datetime | None = None
    ) -> Outgoing:
        """From an outbox row: its `recipient` column and its payload, sent byte for byte but
        for its Date header, which says `dated` when given (`redated`)."""
        head = _header_block(payload)
        if dated is not None:
            rest, head = payload[len(head) :], redated(head, dated)
            payload = head + rest
        sender = _address(_HEADERS_ONLY.parsestr(head, headersonly=True).get("From", ""))
        recipients = tuple(address.strip() for address in recipient.split(",") if address.strip())
        if not sender or not recipients:
            raise ValueError("stored message has no From address or no recipients")
        data = payload.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        return cls(message_id, sender, recipients, data)


def redated(head: str, dated: datetime) -> str:
    """A message's header lines with its Date header saying `dated` (in UTC).

    A message is dated when it is rendered, but automatic mail rendered outside the delivery
    window waits for the next opening (a reminder planned just after midnight goes at 09:00,
    Saturday's on Monday), and any mail may wait for a server that was down: dated when it
    was planned, it showed in the customer's inbox as written at midnight or on Saturday.
    The date of the hand-over is the one RFC 5322 asks for; the Message-ID stays."""
    found = _DATE.search(head)
    if found is None:
        return head
    return head[: found.start()] + _date_line(dated) + head[found.end() :]


@functools.lru_cache(maxsize=8)
def _date_line(dated: datetime) -> str:
    """A dispatch run's messages share one time: its line is formatted once."""
    return f"Date: {format_datetime(dated.astimezone(UTC))}"


def _header_block(payload: str) -> str:
    """The payload's header lines: the parser reads only what it is given, line by line, and
    the body is most of a message."""
    ends = [at + kept for at, kept in ((payload.find("\n\n"), 1), (payload.find("\r\n\r\n"), 2)) if at != -1]
    return payload[: min(ends)] if ends else payload


@functools.lru_cache(maxsize=256)
def _address(header: str) -> str:
    """The first address of a From header ("" for none): a company's messages share one,
    parsed once."""
    return next(iter(getaddresses([header])), ("", ""))[1]
