"""The sync's writers for payments and credits: one set-based upsert per page and table.

Rows are keyed by (company_id, ref); writing a payment or credit replaces the allocations
it owns (its own list is the whole truth about them). A deletion only flags the stored
row: sources often send nothing but the id with it, and its allocations stop counting
because their owner is no longer live. Full pulls reconcile through `seen_run`, as for
invoices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete

from portal_rules.records import AllocationRecord, CreditRecord, PaymentRecord
from store.bulk import among, select_among
from store.history.tables import ALLOCATIONS, CREDITS, PAYMENTS
from store.upsert import insert_new, upsert
from store.writes import mark_gone


def write_payments(
    connection: Connection,
    company_id: str,
    records: Sequence[PaymentRecord],
    *,
    now: datetime,
    run_id: int | None = None,
    new: bool = False,
) -> int:
    """Write a page of payments and the allocations they own; returns the rows written.

    With `new` (none is expected to be stored), nothing stored is read: the payments and
    their lines are inserted, or `AlreadyStored` raised when one was there.
    """
    gone = mark_gone(connection, PAYMENTS, company_id, [r.ref for r in records if r.deleted], now, run_id)
    kept = [r for r in records if not r.deleted]
    rows = [
        (
            r.ref, r.customer_ref, r.paid_on, r.currency, r.amount, r.unapplied, r.reference,
            r.credit_only, r.voided, r.updated_at,
        )
        for r in kept
    ]  # fmt: skip
    write = insert_new if new else upsert
    write(
        connection, PAYMENTS, rows, _KEYS, columns=_PAYMENT_COLUMNS, shared=_shared(company_id, now, run_id)
    )
    _replace_allocations(connection, company_id, "payment", [(r.ref, r.allocations) for r in kept], new=new)
    return len(rows) + gone


def write_credits(
    connection: Connection,
    company_id: str,
    records: Sequence[CreditRecord],
    *,
    now: datetime,
    run_id: int | None = None,
    new: bool = False,
) -> int:
    """Write a page of credit notes/memos and the allocations they own; returns the rows
    written. `new` as for `write_payments`."""
    gone = mark_gone(connection, CREDITS, company_id, [r.ref for r in records if r.deleted], now, run_id)
    kept = [r for r in records if not r.deleted]
    rows = [
        (
            r.ref, r.customer_ref, r.doc_number, r.issue_date, r.currency, r.total, r.remaining,
            r.voided, r.draft, r.updated_at,
        )
        for r in kept
    ]  # fmt: skip
    write = insert_new if new else upsert
    write(connection, CREDITS, rows, _KEYS, columns=_CREDIT_COLUMNS, shared=_shared(company_id, now, run_id))
    _replace_allocations(connection, company_id, "credit", [(r.ref, r.allocations) for r in kept], new=new)
    return len(rows) + gone


def _replace_allocations(
    connection: Connection,
    company_id: str,
    owner_kind: str,
    owners: Sequence[tuple[str, tuple[AllocationRecord, ...]]],
    *,
    new: bool,
) -> None:
    """Store the owners' lines in place of the ones they had. New owners (just inserted) had
    none: allocations are only ever written with their owner, in its transaction."""
    if not owners:
        return
    rows = [
        (ref, line, a.source_kind, a.source_ref, a.invoice_ref, a.amount, a.allocated_on)
        for ref, allocations in owners
        for line, a in enumerate(allocations)
    ]
    shared = {"company_id": company_id, "owner_kind": owner_kind}
    if new:
        insert_new(
            connection, ALLOCATIONS, rows, _ALLOCATION_KEYS, columns=_ALLOCATION_COLUMNS, shared=shared
        )
        return
    # The stored lines are found by a probe per owner (see `select_among`): on PostgreSQL a
    # plain IN list scanned the company's allocations once per page while a full pull was
    # still filling the table (no statistics yet), 36 s of a 100k-invoice pull.
    stored = select_among(
        connection,
        ALLOCATIONS.c.owner_ref,
        [ref for ref, _ in owners],
        [ALLOCATIONS.c.id],
        ALLOCATIONS.c.company_id == company_id,
        ALLOCATIONS.c.owner_kind == owner_kind,
    )
    ids = list(connection.scalars(stored))
    if ids:
        connection.execute(delete(ALLOCATIONS).where(among(connection, ALLOCATIONS.c.id, ids)))
    upsert(connection, ALLOCATIONS, rows, _ALLOCATION_KEYS, columns=_ALLOCATION_COLUMNS, shared=shared)


def _shared(company_id: str, now: datetime, run_id: int | None) -> dict[str, object]:
    """The values every payment or credit row of a page has, bound once."""
    return {"company_id": company_id, "deleted": False, "synced_at": now, "seen_run": run_id}


# Rows are tuples in these columns' order (building a dict per row cost more than writing it).
_KEYS = ("company_id", "ref")
_PAYMENT_COLUMNS = (
    "ref", "customer_ref", "paid_on", "currency", "amount", "unapplied", "reference",
    "credit_only", "voided", "source_updated_at",
)  # fmt: skip
_CREDIT_COLUMNS = (
    "ref", "customer_ref", "doc_number", "issue_date", "currency", "total", "remaining",
    "voided", "draft", "source_updated_at",
)  # fmt: skip
_ALLOCATION_KEYS = ("company_id", "owner_kind", "owner_ref", "line")
_ALLOCATION_COLUMNS = (
    "owner_ref", "line", "source_kind", "source_ref", "invoice_ref", "amount", "allocated_on",
)  # fmt: skip
