"""Outbox messages past the retention (`[store] keep_outbox_days`): deleted, rendered body and all.

Every invitation and reminder ever sent stayed in the outbox with its whole RFC 5322 message
(a statement PDF attached, when the company asks), and `/metrics` counted them by state at
every scrape. A settled message written before the cutoff is deleted; its reminder ledger
rows stay, their `outbox_id` cleared in the same transaction.

Only settled messages go: `sent`, `dropped` and `failed`. Nothing claims, sends or takes back
such a message (`mailer.claim` claims queued ones, `mailer.answers` records answers on
claimed, sending or in-doubt ones, `mailer.withdraw` and `store.invitations` drop queued
ones); a failed one only waits for an admin's `mail resend` or `drop`, which `arsync status`
offers for the retention's days. What is kept, whatever its age, and why (every reader of
outbox rows and of their ids):
- messages `queued`, `claimed` or `sending`: the dispatcher's work in hand;
- messages `in_doubt`: SPEC 5, `arsync status` shows each until an admin resends or drops it
  (it may have reached the customer; nothing decides that for the admin);
- an invitation's mail while its invitation is open (neither accepted nor superseded): a
  portal request reads its state to tell whether a mail is on its way
  (`store.access_requests`), and without it would issue another invitation and mail the
  contact again. A new invitation supersedes a contact's others, so these are at most one
  per contact, however old;
- the table's newest message (read once per pass; those added since wait for the next):
  SQLite hands out the greatest id + 1, so no pruned id is handed out again while it stays,
  and an id read in an old log never names another message (`mail resend|drop ID`).

Why a pruned message can never make one go twice:
- a reminder: "(invoice, offset) at most once, ever" is the ledger's primary key
  (`store.ledger`), and pruning never deletes a ledger row nor changes its pair or status.
  Planning plans no pair on record (`plan_due` reads them all), and `record_sent` refuses
  one recorded first, so a reminder's dedupe key, freed by a prune, could only return with
  pairs the ledger already holds: its enqueue is rolled back (`sync.reminders`). A pruned
  message's ledger rows get `outbox_id` NULL: it is read only joined with queued messages
  (`mailer.withdraw` takes back the pairs of the message it names; `store.ledger` counts the
  pairs of messages waiting as not on record), where NULL joins none and counts as on
  record, as a pruned message's pairs must. An id left pointing at a deleted row would join
  a new message given that id again (SQLite, once another company's purge took the newest
  row), whose take-back would delete the old pairs from the ledger to plan them again.
- an invitation: its mail's dedupe key (and Message-ID, derived from it) is "invitation:"
  and its token's hash, unique among the invitations, which are never pruned; a token is
  issued once, and no code enqueues mail for an invitation issued before.
Counts of the messages by state (`arsync status`, `/metrics`' `arsync_outbox_messages`, a
gauge of what is there now) drop by what a prune deletes; `mail resend|drop` of a pruned id
says no such message.

A message's age is the latest of when it was written (`created_at`), last claimed
(`claimed_at`) and sent (`sent_at`): one resent and delivered yesterday stays. It is judged
against a cutoff on the store's clock (`store.retention.retention_cutoff`). Messages are
deleted oldest first, `BATCH` per transaction, the whole condition checked again by the
DELETE itself: a failed message an admin resends meanwhile stays, and of two pruners that
chose the same messages, each row is deleted (and counted) by one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, or_, select, update

from mailer.outbox import OUTBOX
from mailer.uninvite import INVITATIONS, carries
from store.tables import ReminderLedger

LEDGER = ReminderLedger.__table__
SETTLED = ("sent", "dropped", "failed")
# Fewer than runs a transaction: each message carries its rendered body, tens of kilobytes
# with a statement attached.
BATCH = 1_000


def prune_outbox(
    engine: Engine, before: datetime, *, batch: int = BATCH, stopping: Callable[[], bool] = lambda: False
) -> int:
    """Delete the settled messages older than `before` but those kept (above), clearing their
    ledger rows' `outbox_id`, `batch` messages per transaction; returns how many."""
    with engine.connect() as connection:
        newest = connection.scalar(select(func.max(OUTBOX.c.id))) or 0
    after: tuple[datetime, int] | None = None
    pruned = 0
    while not stopping():
        with engine.begin() as connection:
            page = _old_messages(connection, before, newest, after, batch)
            pruned += _delete(connection, [message_id for _, message_id in page], before, newest)
        if len(page) < batch:
            return pruned
        after = page[-1]
    return pruned


def prunable(before: datetime, newest: int) -> ColumnElement[bool]:
    """A message to delete: settled, nothing done to it since `before`, not the table's
    newest (`newest`, or added since), and not the mail of an invitation still open."""
    c, v = OUTBOX.c, INVITATIONS.c
    open_invitation = select(v.id).where(carries(), v.accepted_at.is_(None), v.superseded_at.is_(None))
    return and_(
        c.status.in_(SETTLED),
        c.id < newest,
        c.created_at < before,
        or_(c.claimed_at.is_(None), c.claimed_at < before),
        or_(c.sent_at.is_(None), c.sent_at < before),
        or_(c.kind != "invitation", ~open_invitation.exists()),
    )


def _old_messages(
    connection: Connection, before: datetime, newest: int, after: tuple[datetime, int] | None, batch: int
) -> list[tuple[datetime, int]]:
    """The next `batch` messages to delete, oldest first, after the key `after` (those kept
    are passed over once per pass, not at every batch)."""
    c = OUTBOX.c
    query = select(c.created_at, c.id).where(prunable(before, newest))
    if after is not None:
        at, message_id = after
        query = query.where(or_(c.created_at > at, and_(c.created_at == at, c.id > message_id)))
    return [tuple(row) for row in connection.execute(query.order_by(c.created_at, c.id).limit(batch))]


def _delete(connection: Connection, ids: list[int], before: datetime, newest: int) -> int:
    """Delete those of `ids` still to delete (an admin may have resent one, another pruner
    deleted it) and clear the ledger's references to them; how many this deleted."""
    if not ids:
        return 0
    c = OUTBOX.c
    gone = (
        connection.execute(delete(OUTBOX).where(c.id.in_(ids), prunable(before, newest)).returning(c.id))
        .scalars()
        .all()
    )
    if gone:
        connection.execute(update(LEDGER).where(LEDGER.c.outbox_id.in_(gone)).values(outbox_id=None))
    return len(gone)
