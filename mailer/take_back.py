"""Taking back the mail a verdict names (`mailer.withdraw` judges which, and why): each reminder
`dropped` with its bucket's reason, in one transaction with its ledger rows:

- the (invoice, offset) pairs still due are taken out of the ledger, so the next planning
  (every minute in the daemon, or `arsync reminders plan`) plans them again, in a reminder
  listing only them;
- so are the pairs no longer due: they were never sent, so SPEC 2 makes them due again if
  their invoice is owed again (a refund reopens it, the customer's reminders are resumed,
  the invoice is marked sent again). Recorded as skipped, a reopened invoice waited for its
  next offset. Planning's catch-up rule still sends only the latest offset due then.

Only rows still queued, and still as tried or untried as assessed, are dropped; a reminder
tried before keeps its ledger rows `sent`. The invitations it names are dropped by
`mailer.uninvite`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, or_, select, update

from mailer.outbox import OUTBOX
from mailer.uninvite import REVOKED, UNWANTED, drop_invitations
from store.tables import ReminderLedger

LEDGER = ReminderLedger.__table__
CHUNK = 500
WITHDRAWN = (
    "withdrawn before sending: none of its invoices is due any more "
    "(paid, voided, hidden or paused, or the offset is no longer sent)"
)
REPLANNED = "withdrawn before sending: some of its invoices are no longer due; the others are planned again"
MERGED = "withdrawn before sending: planned again with the customer's other reminders due now, as one email"
REBALANCED = "withdrawn before sending: an invoice it lists has another balance now; planned again with it"
REDATED = "withdrawn before sending: an invoice it lists is due later now; it is reminded of when due"
READDRESSED = "withdrawn before sending: the customer's email addresses changed; planned again to them"
HELD = (
    "withdrawn before sending: the books' latest version of an invoice it lists, or of its customer, "
    "could not be read (quarantined: `arsync status`); planned again once a sync reads it"
)
# A verdict's reminder buckets, in the order they are dropped, with the reason each records.
REMINDER_REASONS = {
    "withdrawn": WITHDRAWN,
    "replanned": REPLANNED,
    "merged": MERGED,
    "rebalanced": REBALANCED,
    "readdressed": READDRESSED,
    "redated": REDATED,
    "held": HELD,
}

Pair = tuple[str, int]  # (invoice ref, offset)


@dataclass(slots=True)
class Verdict:
    """The reminders to take back: `withdrawn` list nothing still due; `replanned` list some
    invoices still due (their pairs, to plan again), and others not; `merged` are wholly due
    but would reach their customer beside another reminder (all of their pairs planned again,
    together); `rebalanced` are wholly due but list a balance that changed since they were
    rendered (planned again, to ask for what is owed now)."""

    withdrawn: list[int] = field(default_factory=list)
    replanned: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)  # wholly due, but one of a customer's several
    rebalanced: list[int] = field(default_factory=list)  # wholly due, a balance changed since rendered
    readdressed: list[int] = field(default_factory=list)  # wholly due, the customer's addresses changed
    redated: list[int] = field(default_factory=list)  # lists an invoice whose offset is not due any more
    held: list[int] = field(default_factory=list)  # lists an invoice `store.quarantine` holds
    revoked: list[int] = field(default_factory=list)  # invitations that can no longer be accepted
    unwanted: list[int] = field(default_factory=list)  # automatic, of a company without auto_invite
    # outbox id -> (company, the pairs still due, those not): of the untried ones once taken
    pairs: dict[int, tuple[str, list[Pair], list[Pair]]] = field(default_factory=dict)
    tried: set[int] = field(default_factory=set)  # handed to the server before: ledger rows stay

    def reminders(self) -> list[int]:
        """The reminders it names, bucket by bucket (`REMINDER_REASONS`)."""
        return [outbox_id for name in REMINDER_REASONS for outbox_id in getattr(self, name)]


def take_back(connection: Connection, verdict: Verdict, now: datetime) -> Verdict:
    """Drop the reminders `verdict` names that are still queued and still as tried or untried
    as assessed; change the ledger rows of the untried ones (module docstring); invitations
    dropped are superseded at `now`. What was taken back; the caller commits."""
    taken = Verdict()
    named_ids = set(verdict.reminders())
    free = _locked(connection, sorted(named_ids | set(verdict.revoked) | set(verdict.unwanted)))
    for named, reason, bucket in (
        (verdict.revoked, REVOKED, taken.revoked),
        (verdict.unwanted, UNWANTED, taken.unwanted),
    ):
        ids = [i for i in named if i in free]
        for start in range(0, len(ids), CHUNK):
            bucket += drop_invitations(connection, ids[start : start + CHUNK], reason, now)
    for name, reason in REMINDER_REASONS.items():
        named, bucket = getattr(verdict, name), getattr(taken, name)
        ids = [i for i in named if i in free]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            bucket += _drop(connection, [i for i in chunk if i not in verdict.tried], reason, tried=False)
            bucket += _drop(connection, [i for i in chunk if i in verdict.tried], reason, tried=True)
        bucket.sort()
    dropped = taken.reminders()
    taken.tried = verdict.tried & set(dropped)
    untried = [i for i in dropped if i not in taken.tried]
    taken.pairs = {outbox_id: verdict.pairs[outbox_id] for outbox_id in untried}  # ledger rows change
    released = [
        _key(company, pair)
        for company, due_now, not_due in taken.pairs.values()
        for pair in (*due_now, *not_due)
    ]
    if released:
        connection.execute(delete(LEDGER).where(_pair()), released)
    return taken


def _locked(connection: Connection, ids: list[int]) -> set[int]:
    """Those of `ids` still queued, locked for this transaction in id order, skipping the rows
    another dispatcher holds (it is taking them back or claiming them). On PostgreSQL: the
    drops lock rows by verdict (withdrawn, then planned again), and two dispatchers whose
    readings straddled a payment classify the same rows differently, so without one order
    they locked them in opposite orders and deadlocked. SQLite has a single writer."""
    if connection.dialect.name != "postgresql":
        return set(ids)
    c = OUTBOX.c
    free: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        rows = (
            select(c.id)
            .where(c.id.in_(ids[start : start + CHUNK]), c.status == "queued")
            .order_by(c.id)
            .with_for_update(skip_locked=True)
        )
        free.update(connection.execute(rows).scalars())
    return free


def _drop(connection: Connection, ids: list[int], reason: str, *, tried: bool) -> list[int]:
    """Drop those of `ids` still queued (not claimed meanwhile) and still (un)tried as assessed."""
    if not ids:
        return []
    c = OUTBOX.c
    attempted = tried_before() if tried else ~tried_before()
    dropped = connection.execute(
        update(OUTBOX)
        .where(c.id.in_(ids), c.status == "queued", attempted)
        .values(status="dropped", last_error=reason)
        .returning(c.id)
    )
    return sorted(dropped.scalars().all())


def tried_before() -> ColumnElement[bool]:
    """Handed to the server at least once: an attempt is counted, or the row was claimed and
    not handed back (`mail resend` sets attempts back to 0 but keeps who claimed it)."""
    c = OUTBOX.c
    return or_(c.attempts > 0, c.claimed_at.is_not(None))


def _pair() -> Any:
    l = LEDGER.c  # noqa: E741
    return and_(
        l.company_id == bindparam("b_company"),
        l.invoice_ref == bindparam("b_ref"),
        l.offset_days == bindparam("b_offset"),
        l.status == "sent",
    )


def _key(company_id: str, pair: Pair) -> dict[str, Any]:
    return {"b_company": company_id, "b_ref": pair[0], "b_offset": pair[1]}
