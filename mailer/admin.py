"""Outbox administration for the CLI: counts for `arsync status`, and resend / drop.

A message in doubt may already have reached the customer, so only an admin decides to
send it again; these functions are that decision. Every call is scoped by company.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, update

from mailer.claim import CLAIMED, expire_claims_of
from mailer.outbox import OUTBOX
from store.clock import store_time
from store.fleet_tables import WorkerRow
from store.owners import gone

WORKERS = WorkerRow.__table__

STATUSES = ("queued", "claimed", "sending", "sent", "failed", "in_doubt", "dropped")
RESENDABLE = ("in_doubt", "failed")
DROPPABLE = ("queued", "failed", "in_doubt")


class OutboxError(Exception):
    """An admin action that does not apply (unknown message, wrong status)."""


class UnknownMessage(OutboxError):
    """The company has no outbox message with that id (bad usage, not a failed action)."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox message as `arsync status` lists it."""

    id: int
    company_id: str
    kind: str
    recipient: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    claimed_at: datetime | None


def counts(engine: Engine, company_id: str) -> dict[str, int]:
    """Messages per status for one company; statuses without messages are left out."""
    query = (
        select(OUTBOX.c.status, func.count())
        .where(OUTBOX.c.company_id == company_id)
        .group_by(OUTBOX.c.status)
    )
    with engine.connect() as connection:
        return {status: n for status, n in connection.execute(query).all()}


def entries(
    engine: Engine, company_id: str, statuses: tuple[str, ...] = RESENDABLE, limit: int = 50
) -> list[OutboxEntry]:
    """The company's messages in `statuses` (by default those needing an admin), newest first."""
    c = OUTBOX.c
    query = (
        select(c.id, c.company_id, c.kind, c.recipient, c.subject, c.status, c.attempts)
        .add_columns(c.last_error, c.created_at, c.claimed_at)
        .where(c.company_id == company_id, c.status.in_(statuses))
        .order_by(c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [OutboxEntry(*row) for row in connection.execute(query).all()]


def resend(engine: Engine, company_id: str, outbox_id: int) -> None:
    """Queue an in-doubt or failed message again, with a fresh retry budget.

    The stored message is sent unchanged (same Message-ID). Automatic mail still waits
    for the delivery window.
    """
    values = {"status": "queued", "attempts": 0, "next_attempt_at": None, "last_error": None}
    _change(engine, company_id, outbox_id, RESENDABLE, values, "resent")


def drop(engine: Engine, company_id: str, outbox_id: int) -> None:
    """Give up on a queued, failed or in-doubt message: it will never be sent."""
    _change(engine, company_id, outbox_id, DROPPABLE, {"status": "dropped"}, "dropped")


def _change(
    engine: Engine,
    company_id: str,
    outbox_id: int,
    allowed: tuple[str, ...],
    values: dict,
    verb: str,
) -> None:
    c = OUTBOX.c
    with engine.begin() as connection:
        _settle_dead_claimer(connection, company_id, outbox_id)
        changed = connection.execute(
            update(OUTBOX)
            .where(c.id == outbox_id, c.company_id == company_id, c.status.in_(allowed))
            .values(**values)
        ).rowcount
        if changed:
            return
        status = connection.execute(
            select(c.status).where(c.id == outbox_id, c.company_id == company_id)
        ).scalar_one_or_none()
    if status is None:
        raise UnknownMessage(f"no outbox message {outbox_id} for company {company_id!r}")
    raise OutboxError(
        f"outbox message {outbox_id} is {status}; only {' or '.join(allowed)} messages can be {verb}"
    )


def _settle_dead_claimer(connection: Connection, company_id: str, outbox_id: int) -> None:
    """A message whose claimer died (its heartbeat ran out, or its process on this machine
    exited) is settled first, as a worker's next dispatch would settle it: `sending` turns
    `in_doubt`, `claimed` goes back to `queued`. With no worker left to dispatch, the admin
    `arsync status` tells of a message in doubt could otherwise neither resend nor drop it."""
    c, w = OUTBOX.c, WORKERS.c
    row = connection.execute(
        select(c.claimed_by, w.alive_until)
        .select_from(OUTBOX.outerjoin(WORKERS, w.worker == c.claimed_by))
        .where(c.id == outbox_id, c.company_id == company_id, c.status.in_((CLAIMED, "sending")))
    ).first()
    if row is None or row.claimed_by is None:
        return
    if gone(row.claimed_by, row.alive_until, store_time(connection)):
        expire_claims_of(connection, [row.claimed_by])
