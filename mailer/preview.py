"""What a dispatch would do at `now`, without changing anything (`--dry-run`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, select

from mailer.claim import WindowFor
from mailer.outbox import OUTBOX
from mailer.take_back import Verdict
from portal_rules.windows import next_opening
from store.clock import store_now

WITHDRAWN_NOTE = "no longer due: withdrawn unless that changes"
REPLANNED_NOTE = "some invoices no longer due: planned again without them unless that changes"
MERGED_NOTE = "one of several for this customer: planned again as one email unless that changes"
REBALANCED_NOTE = "a balance changed since it was rendered: planned again with it unless that changes"
READDRESSED_NOTE = "the customer's addresses changed: planned again to them unless that changes"
REDATED_NOTE = "an invoice it lists is due later now: withdrawn unless that changes"
HELD_NOTE = "an invoice it lists, or its customer, is quarantined: withdrawn unless a sync reads it first"
REVOKED_NOTE = "the invitation can no longer be accepted: withdrawn unless that changes"
UNWANTED_NOTE = "automatic invitations are off for the company: withdrawn unless that changes"


@dataclass(frozen=True, slots=True)
class Planned:
    """A queued message and when it would be handed to the mail server.

    `reason` says what it waits for: "due now", "not before", "retry backoff",
    "delivery window" (then `send_at` is the window's next opening) or, for automatic mail
    of a company the configuration no longer holds, "company not configured" (never sent
    while it is not; `send_at` is when it would be otherwise). A reminder listing invoices no
    longer due says what sending would do instead, unless that changes (`mailer.withdraw`).
    """

    id: int
    company_id: str
    kind: str
    automatic: bool
    recipient: str
    subject: str
    send_at: datetime
    reason: str


def preview(
    engine: Engine,
    *,
    now: datetime,
    window_for: WindowFor,
    lease: timedelta,
    limit: int = 1000,
    stale: Callable[[Connection], Verdict] | None = None,
) -> tuple[list[Planned], list[int]]:
    """The queued messages (oldest first, at most `limit`) with their send times, and
    the ids of `sending` rows whose lease has run out on the store's clock (a real run marks
    them in_doubt).
    `stale` says which reminders list invoices no longer due (a real run takes them back)."""
    c = OUTBOX.c
    columns = (
        c.id,
        c.company_id,
        c.kind,
        c.automatic,
        c.recipient,
        c.subject,
        c.not_before,
        c.next_attempt_at,
    )
    with engine.connect() as connection:
        rows = connection.execute(
            select(*columns).where(c.status == "queued").order_by(c.not_before, c.id).limit(limit)
        ).all()
        expiring = (
            connection.execute(
                select(c.id)
                .where(c.status == "sending", c.claimed_at < store_now(connection) - lease)
                .order_by(c.id)
            )
            .scalars()
            .all()
        )
        verdict = stale(connection) if stale is not None else Verdict()
    notes = {
        **dict.fromkeys(verdict.withdrawn, WITHDRAWN_NOTE),
        **dict.fromkeys(verdict.replanned, REPLANNED_NOTE),
        **dict.fromkeys(verdict.merged, MERGED_NOTE),
        **dict.fromkeys(verdict.rebalanced, REBALANCED_NOTE),
        **dict.fromkeys(verdict.readdressed, READDRESSED_NOTE),
        **dict.fromkeys(verdict.redated, REDATED_NOTE),
        **dict.fromkeys(verdict.held, HELD_NOTE),
        **dict.fromkeys(verdict.revoked, REVOKED_NOTE),
        **dict.fromkeys(verdict.unwanted, UNWANTED_NOTE),
    }
    planned = [_plan(row, now, window_for, notes.get(row.id)) for row in rows]
    return sorted(planned, key=lambda p: (p.send_at, p.id)), list(expiring)


def _plan(row, now: datetime, window_for: WindowFor, note: str | None) -> Planned:
    send_at, reason = now, "due now"
    if row.not_before > send_at:
        send_at, reason = row.not_before, "not before"
    if row.next_attempt_at is not None and row.next_attempt_at > send_at:
        send_at, reason = row.next_attempt_at, "retry backoff"
    if row.automatic:
        window = window_for(row.company_id)
        if window is None:
            reason = "company not configured"
        elif (opening := next_opening(window, send_at)) > send_at:
            send_at, reason = opening, "delivery window"
    if note:
        reason += f"; {note}"
    return Planned(
        row.id, row.company_id, row.kind, row.automatic, row.recipient, row.subject, send_at, reason
    )
