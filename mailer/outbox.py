"""Putting a rendered message into the outbox, inside the caller's transaction.

The caller commits the outbox row together with the decision that produced the mail
(an invitation issued, a reminder recorded in the ledger): either both happen or neither.
The whole RFC 5322 message is stored, so a retry sends exactly the same bytes with the
same Message-ID.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_string
from email.message import EmailMessage

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from store.bulk import insert_many_ignoring, insert_one_ignoring
from store.tables import Outbox

KINDS = ("invitation", "reminder")
OUTBOX = Outbox.__table__


def enqueue(
    session: Session,
    message: EmailMessage,
    *,
    company_id: str,
    kind: str,
    automatic: bool,
    dedupe_key: str | None = None,
    not_before: datetime,
) -> int | None:
    """Add `message` to the outbox; its id, or None when `dedupe_key` is already there.

    `automatic` mail waits for the company's delivery window at dispatch time; manual
    and transactional mail does not. `not_before` is the earliest send time (aware).
    `created_at` is the message's Date header (the `now` it was rendered with); the dispatcher
    dates it again as it leaves (`mailer.outgoing.redated`).
    Nothing is committed here.
    """
    row = outbox_row(
        rendered(message),
        company_id=company_id,
        kind=kind,
        automatic=automatic,
        dedupe_key=dedupe_key,
        not_before=not_before,
    )
    return insert_one_ignoring(session.connection(), OUTBOX, row)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message already serialized: what the outbox stores, without the `EmailMessage`.

    Rendering and serializing cost milliseconds per message (the stdlib parses every
    structured header); a caller with thousands of messages can do it in worker processes
    and hand these over.
    """

    message_id: str
    recipients: tuple[str, ...]
    subject: str
    created_at: datetime
    payload: str


def rendered(message: EmailMessage) -> Rendered:
    """The outbox form of a rendered message; ValueError for one the outbox cannot send as it is."""
    _check(message)
    return Rendered(
        str(message["Message-ID"]),
        tuple(recipients(message)),
        str(message["Subject"] or ""),
        message["Date"].datetime,
        message.as_string(policy=email.policy.default),
    )


def enqueue_keyed(connection: Connection, rows: Sequence[dict]) -> dict[str, int]:
    """Add many `outbox_row`s (messages serialized by `rendered`, possibly in another
    process), each with its own `dedupe_key`, in the caller's transaction; the id of each
    one added, by its key (a key already in the outbox is left out)."""
    if any(row["dedupe_key"] is None for row in rows):
        raise ValueError("messages enqueued together need a dedupe key each")
    return insert_many_ignoring(connection, OUTBOX, rows, "dedupe_key")


def outbox_row(
    message: Rendered,
    *,
    company_id: str,
    kind: str,
    automatic: bool,
    dedupe_key: str | None = None,
    not_before: datetime,
) -> dict:
    """The outbox row of a rendered message, queued (see `enqueue` for the arguments)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if not_before.tzinfo is None:
        raise ValueError("not_before must be timezone-aware")
    if not message.recipients:
        raise ValueError("a message needs at least one To or Cc address")
    return {
        "company_id": company_id,
        "kind": kind,
        "automatic": automatic,
        "recipient": ", ".join(message.recipients),
        "subject": message.subject,
        "message_id": message.message_id,
        "payload": message.payload,
        "dedupe_key": dedupe_key,
        "not_before": not_before,
        "status": "queued",
        "attempts": 0,
        "created_at": message.created_at,
    }


def _check(message: EmailMessage) -> None:
    if not message["Message-ID"] or not message["Date"]:
        raise ValueError("a message needs a Message-ID and a Date header (see mailer.render)")
    if message["Bcc"] is not None:
        raise ValueError("stored messages are sent byte for byte: no Bcc header")
    if not recipients(message):
        raise ValueError("a message needs at least one To or Cc address")


def recipients(message: EmailMessage) -> list[str]:
    """The To and Cc addresses of `message`."""
    return [
        address.addr_spec
        for name in ("To", "Cc")
        for header in message.get_all(name, [])
        for address in header.addresses
    ]


def parse(payload: str) -> EmailMessage:
    """A stored payload back as the `EmailMessage` it was enqueued as."""
    return message_from_string(payload, policy=email.policy.default)
