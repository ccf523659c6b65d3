"""Claiming due outbox rows, so that no two dispatchers ever take the same message.

PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` picks rows no other dispatcher holds,
then they are marked `sending` in the same transaction. SQLite serializes writers, so a
single `UPDATE ... WHERE status = 'queued' AND id IN (...)` is already exclusive. Either
way the caller commits the claim before handing anything to the mail server.

A row still `sending` after the lease belonged to a dispatcher that died before it
recorded the server's answer: it becomes `in_doubt` and is never re-sent automatically.
The lease (`claimed_at`) is written and judged on the store's clock (`store.clock`), so a
dispatcher whose clock runs ahead never expires a live one's batch; due times and delivery
windows are business time, the dispatcher's `now`.

With a transport that reports each message as it starts (`marks_start`), a batch is
claimed `claimed` instead, and each row turns `sending` (committed) just before its
message goes to the server (`start`; a connection marks the few messages it takes next
in one go): a dispatcher that dies mid-batch leaves in doubt only the messages it had
taken up; the rest go back to `queued` for another dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, false, or_, select, update

from mailer.outbox import OUTBOX
from portal_rules.windows import DeliveryWindow, is_open
from store.clock import store_now

WindowFor = Callable[[str], DeliveryWindow | None]
"""A company's delivery window; None for a company the configuration no longer holds (removed
from the file or the store): its automatic mail waits, sent at no hour, until it is back."""

CLAIMED = "claimed"  # taken by a dispatcher, not begun: safe to hand back to `queued`
IN_DOUBT_NOTE = (
    "the dispatcher (claimed_by, claimed_at) stopped before recording the server's answer; "
    "it may have been delivered: resend or drop it"
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this dispatcher now owns, with what it needs to send and record it."""

    id: int
    company_id: str
    message_id: str
    recipient: str
    payload: str
    attempts: int
    last_error: str | None = None  # what an earlier attempt noted (refusals are carried on)
    automatic: bool = False  # held to its company's delivery window (checked again as it leaves)
    kind: str = "reminder"  # an outbox kind (`mailer.outbox.KINDS`)


def due(now: datetime) -> ColumnElement[bool]:
    """Queued rows whose earliest send time and retry time have come."""
    c = OUTBOX.c
    return and_(
        c.status == "queued",
        c.not_before <= now,
        or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
    )


def open_companies(connection: Connection, now: datetime, window_for: WindowFor) -> list[str]:
    """Companies with due automatic mail whose delivery window is open at `now`."""
    query = select(OUTBOX.c.company_id).where(due(now), OUTBOX.c.automatic).distinct()
    companies = connection.execute(query).scalars().all()
    return [c for c in companies if (w := window_for(c)) is not None and is_open(w, now)]


def claimable(now: datetime, open_companies: Collection[str]) -> ColumnElement[bool]:
    """Due rows a dispatcher may take now: manual mail, and automatic mail of the companies
    whose delivery window is open."""
    c = OUTBOX.c
    return and_(due(now), or_(c.automatic == false(), c.company_id.in_(list(open_companies))))


def claim(
    connection: Connection,
    *,
    now: datetime,
    worker_id: str,
    open_companies: Collection[str],
    limit: int,
    each: bool = False,
    only: Collection[int] | None = None,
) -> list[Claimed]:
    """Mark up to `limit` due rows `sending` (`each`: `claimed`, see `start`) for `worker_id`,
    among the rows `only` names if given; the caller commits."""
    c = OUTBOX.c
    wanted = claimable(now, open_companies)
    if only is not None:
        wanted = and_(wanted, c.id.in_(list(only)))
    picked = select(c.id).where(wanted).order_by(c.not_before, c.id).limit(limit)
    if connection.dialect.name == "postgresql":
        ids = connection.execute(picked.with_for_update(skip_locked=True)).scalars().all()
        if not ids:
            return []
        picked = ids
    else:
        picked = picked.scalar_subquery()
    statement = (
        update(OUTBOX)
        .where(c.id.in_(picked), c.status == "queued")
        .values(status=CLAIMED if each else "sending", claimed_by=worker_id, claimed_at=store_now(connection))
        .returning(
            c.id,
            c.company_id,
            c.message_id,
            c.recipient,
            c.payload,
            c.attempts,
            c.last_error,
            c.automatic,
            c.kind,
        )
    )
    rows = connection.execute(statement).all()
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


def start(connection: Connection, row_ids: Collection[int], worker_id: str) -> set[int]:
    """These claimed rows are about to reach the server: `sending` from now on; the ids still
    this worker's. A row missing from the answer was taken by another worker once this
    one's lease ran out, and must not be sent. A row already started is answered again.
    """
    if not row_ids:
        return set()
    c = OUTBOX.c
    statement = (
        update(OUTBOX)
        .where(c.id.in_(list(row_ids)), c.claimed_by == worker_id, c.status.in_((CLAIMED, "sending")))
        .values(status="sending")
        .returning(c.id)
    )
    return set(connection.execute(statement).scalars().all())


def expire_claims_of(connection: Connection, workers: Collection[str]) -> list[int]:
    """Rows of workers known to be dead, now rather than after the lease: `sending` ones become
    `in_doubt` (they may have reached the server, so they are not sent again), `claimed` ones
    (never begun) go back to `queued`. The ids now in doubt."""
    if not workers:
        return []
    c = OUTBOX.c
    return _expire(connection, c.claimed_by.in_(list(workers)))


def expire_leases(connection: Connection, *, lease: timedelta) -> list[int]:
    """Rows claimed longer than `lease` ago on the store's clock: `sending` ones become
    `in_doubt` (their ids are returned), `claimed` ones go back to `queued`.

    `claimed_by` and `claimed_at` stay on an in-doubt row to say which dispatcher held it.
    """
    return _expire(connection, OUTBOX.c.claimed_at < store_now(connection) - lease)


def _expire(connection: Connection, whose: ColumnElement[bool]) -> list[int]:
    c = OUTBOX.c
    connection.execute(
        update(OUTBOX)
        .where(c.status == CLAIMED, whose)
        .values(status="queued", claimed_by=None, claimed_at=None)
    )
    statement = (
        update(OUTBOX)
        .where(c.status == "sending", whose)
        .values(status="in_doubt", last_error=IN_DOUBT_NOTE)
        .returning(c.id)
    )
    return sorted(connection.execute(statement).scalars().all())
