"""Automatic reminders withdrawn before sending: their invoices stopped being due while they
waited.

A reminder planned outside the delivery window waits in the outbox for the next opening
(Saturday's reminder goes out on Monday). If by then none of the invoices it lists may be
reminded of any more (paid, voided, deleted, no longer shown in the portal, or the customer
was paused or left the portal), sending it would ask the customer for money they do not
owe. Just before the dispatcher claims automatic mail, such reminders are `dropped` with the
reason, and their (invoice, offset) pairs turn from `sent` to `skipped` in the ledger: they
were never sent, and stay done (a reopened invoice is reminded at its next offset).

Only reminders never handed to the server yet are withdrawn (no attempt made); one listing
at least one invoice still due goes out as it was rendered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select, true, update

from mailer.claim import due
from mailer.outbox import OUTBOX
from portal_rules.reminders import remindable
from portal_rules.types import CustomerFacts
from store.facts import invoice_facts
from store.tables import Customer, Invoice, ReminderLedger

LEDGER, INVOICES, CUSTOMERS = ReminderLedger.__table__, Invoice.__table__, Customer.__table__
FACTS = {
    "ref", "customer_ref", "balance", "total", "due_date", "doc_number", "issue_date", "currency",
    "source_sent", "sent_override", "voided", "deleted", "draft",
}  # fmt: skip  # the invoice columns `invoice_facts` reads
CHUNK = 500
REASON = "withdrawn before sending: none of its invoices is due any more (paid, voided, hidden or paused)"

ImportsInactive = Callable[[str], bool]
"""Whether a company imports its inactive customers into the portal (they may be reminded)."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """The dispatcher's `withdraw`, for the companies' settings: the call drops the reminders
    no longer due among those about to be claimed; `stale` only names them (`--dry-run`)."""

    imports_inactive: ImportsInactive

    def __call__(self, connection: Connection, now: datetime, companies: Collection[str]) -> list[int]:
        inactive = self.imports_inactive
        return withdraw_stale(connection, now=now, companies=companies, imports_inactive=inactive)

    def stale(self, connection: Connection) -> list[int]:
        return no_longer_due(connection, now=None, companies=None, imports_inactive=self.imports_inactive)


def withdraw_stale(
    connection: Connection, *, now: datetime, companies: Collection[str], imports_inactive: ImportsInactive
) -> list[int]:
    """Drop the due, never-tried automatic reminders of `companies` whose invoices are all no
    longer remindable; the ids dropped. The caller commits."""
    stale = no_longer_due(connection, now=now, companies=companies, imports_inactive=imports_inactive)
    withdrawn: list[int] = []
    c = OUTBOX.c
    for start in range(0, len(stale), CHUNK):
        dropped = connection.execute(
            update(OUTBOX)
            .where(c.id.in_(stale[start : start + CHUNK]), c.status == "queued", c.attempts == 0)
            .values(status="dropped", last_error=REASON)
            .returning(c.id)
        )
        ids = list(dropped.scalars().all())  # not those another dispatcher claimed meanwhile
        if ids:
            done = update(LEDGER).where(LEDGER.c.outbox_id.in_(ids), LEDGER.c.status == "sent")
            connection.execute(done.values(status="skipped"))
        withdrawn += ids
    return sorted(withdrawn)


def no_longer_due(
    connection: Connection,
    *,
    now: datetime | None,
    companies: Collection[str] | None,
    imports_inactive: ImportsInactive,
) -> list[int]:
    """The never-tried automatic reminders (of `companies`, due at `now`; None: any) whose
    invoices are all no longer remindable. Reads only (`--dry-run` shows them)."""
    if companies is not None and not companies:
        return []
    listed: dict[int, list[bool]] = defaultdict(list)  # outbox id -> each listed invoice still due?
    for row in connection.execute(_waiting(now, companies)).mappings():
        listed[row["outbox_id"]].append(_still_due(row, imports_inactive))
    return sorted(outbox_id for outbox_id, due_now in listed.items() if not any(due_now))


def _waiting(now: datetime | None, companies: Collection[str] | None) -> Select:
    """Each (reminder about to be claimed, invoice it lists): the invoice's and its customer's
    columns (NULL when no longer stored). A reminder without ledger pairs lists nothing known:
    it is left alone."""
    c, i, k = OUTBOX.c, INVOICES.c, CUSTOMERS.c
    listed = LEDGER.join(OUTBOX, (LEDGER.c.outbox_id == c.id) & (LEDGER.c.company_id == c.company_id))
    with_invoice = listed.outerjoin(
        INVOICES, (i.company_id == LEDGER.c.company_id) & (i.ref == LEDGER.c.invoice_ref)
    ).outerjoin(CUSTOMERS, (k.company_id == i.company_id) & (k.ref == i.customer_ref))
    return (
        select(
            c.id.label("outbox_id"),
            c.company_id,
            *(column for column in INVOICES.c if column.name in FACTS),
            k.active.label("customer_active"),
            k.deleted.label("customer_deleted"),
            k.reminders_paused,
        )
        .select_from(with_invoice)
        .where(
            due(now) if now is not None else c.status == "queued",
            c.kind == "reminder",
            c.automatic,
            c.attempts == 0,
            c.company_id.in_(list(companies)) if companies is not None else true(),
            LEDGER.c.status == "sent",
        )
    )


def _still_due(row: Mapping[str, Any], imports_inactive: ImportsInactive) -> bool:
    if row["ref"] is None:  # the invoice is no longer stored
        return False
    invoice = invoice_facts(row)
    customer = (
        None
        if row["customer_active"] is None
        else CustomerFacts(
            invoice.customer_ref, row["customer_active"], row["customer_deleted"], row["reminders_paused"]
        )
    )
    return remindable(invoice, customer, imports_inactive(row["company_id"]))
