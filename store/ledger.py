"""The reminder ledger: every (invoice, offset) ever sent or skipped, and what planning reads.

The ledger's primary key is the at-most-once guarantee across workers and restarts:
`record_sent` fails with `IntegrityError` when another worker recorded one of the pairs
first (the caller rolls back its outbox message with it); `record_skipped` leaves such
rows alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Engine, or_, select

from portal_rules.reminders import ReminderPlan, due_reminders
from portal_rules.types import CustomerFacts, InvoiceFacts
from store.bulk import insert_ignoring, insert_many
from store.facts import invoice_facts
from store.quarantine import held_refs
from store.tables import Contact, Customer, Invoice, Outbox, ReminderLedger

LEDGER = ReminderLedger.__table__
BATCH = 500


@dataclass(frozen=True, slots=True)
class ReminderInputs:
    """What `portal_rules.reminders.due_reminders` decides over, for one company."""

    invoices: list[InvoiceFacts]  # visible, open, due on or before the horizon
    customers: dict[str, CustomerFacts]  # the customers of those invoices
    done: set[tuple[str, int]]  # (invoice ref, offset) already in the ledger


def reminder_inputs(
    connection: Connection, company_id: str, horizon: date, *, waiting_after: datetime | None = None
) -> ReminderInputs:
    """The company's open visible invoices due by `horizon` (but those `store.quarantine`
    holds), their customers, and the ledger pairs of those invoices (but, given
    `waiting_after`, those of messages queued to go only after it). The customers and pairs
    are selected by subquery, not by a list of refs: a company with more open invoices than a
    statement may carry parameters (65,535 on PostgreSQL) must still be planned."""
    wanted = (
        Invoice.company_id == company_id,
        Invoice.visible.is_(True),
        Invoice.balance > 0,
        Invoice.due_date <= horizon,
        # held while the books' latest version of the invoice or its customer is quarantined:
        # the stored balance (or the customer's status) may be out of date
        Invoice.ref.not_in(held_refs(company_id, "invoices")),
        Invoice.customer_ref.not_in(held_refs(company_id, "customers")),
    )
    rows = connection.execute(select(Invoice.__table__).where(*wanted)).mappings().all()
    invoices = [invoice_facts(r) for r in rows]
    if not invoices:
        return ReminderInputs([], {}, set())
    customers = {
        r.ref: CustomerFacts(r.ref, r.active, r.deleted, r.reminders_paused)
        for r in connection.execute(
            select(Customer.ref, Customer.active, Customer.deleted, Customer.reminders_paused).where(
                Customer.company_id == company_id,
                Customer.ref.in_(select(Invoice.customer_ref).where(*wanted)),
            )
        )
    }
    ledger = select(LEDGER.c.invoice_ref, LEDGER.c.offset_days).where(
        LEDGER.c.company_id == company_id, LEDGER.c.invoice_ref.in_(select(Invoice.ref).where(*wanted))
    )
    if waiting_after is not None:
        later = select(Outbox.id).where(
            Outbox.company_id == company_id, Outbox.status == "queued", Outbox.not_before > waiting_after
        )
        ledger = ledger.where(or_(LEDGER.c.outbox_id.is_(None), LEDGER.c.outbox_id.not_in(later)))
    done = {(ref, offset) for ref, offset in connection.execute(ledger)}
    return ReminderInputs(invoices, customers, done)


def plan_due(
    connection: Connection,
    company_id: str,
    offsets: Sequence[int],
    today: date,
    *,
    import_inactive: bool,
    waiting_after: datetime | None = None,
) -> ReminderPlan:
    """The company's reminders due `today` (company date) and not on record: what planning
    enqueues, and what the dispatcher asks before a held reminder goes (`mailer.withdraw`),
    counting those queued to go only after its time (`waiting_after`) as not on record."""
    if not offsets:  # `reminder_offsets_days = []`: the company sends no reminders
        return ReminderPlan((), ())
    horizon = _horizon(today, min(offsets))
    inputs = reminder_inputs(connection, company_id, horizon, waiting_after=waiting_after)
    return due_reminders(
        inputs.invoices, inputs.customers, offsets, inputs.done, today, import_inactive=import_inactive
    )


def _horizon(today: date, earliest_offset: int) -> date:
    """The last due date with something due `today`; the calendar's end when that lies past it
    (`--now` in year 9999 with a negative offset)."""
    try:
        return today - timedelta(days=earliest_offset)
    except OverflowError:
        return date.max if earliest_offset < 0 else date.min


def reminder_recipients(
    connection: Connection, company_id: str, refs: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """Each customer's valid contact addresses still in the source, primary first (asked
    `BATCH` customers at a time: bounded statements whatever the number of customers)."""
    out: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(refs), BATCH):
        for ref, email in connection.execute(
            select(Contact.customer_ref, Contact.email)
            .where(
                Contact.company_id == company_id,
                Contact.customer_ref.in_(list(refs[start : start + BATCH])),
                Contact.valid.is_(True),
                Contact.in_source.is_(True),
            )
            .order_by(Contact.customer_ref, Contact.position)
        ):
            out[ref].append(email)
    return {ref: tuple(emails) for ref, emails in out.items()}


def _rows(company_id: str, pairs: Iterable[tuple[str, int]], status: str, now: datetime) -> list[dict]:
    return [
        {
            "company_id": company_id,
            "invoice_ref": ref,
            "offset_days": offset,
            "status": status,
            "recorded_at": now,
        }
        for ref, offset in pairs
    ]


def record_skipped(engine: Engine, company_id: str, pairs: Sequence[tuple[str, int]], now: datetime) -> None:
    """Record catch-up (invoice, offset) pairs as skipped, leaving any already recorded alone."""
    rows = _rows(company_id, pairs, "skipped", now)
    for start in range(0, len(rows), BATCH):
        with engine.begin() as connection:
            insert_ignoring(connection, LEDGER, rows[start : start + BATCH])


@dataclass(frozen=True, slots=True)
class SentPairs:
    """The (invoice ref, offset) pairs one outbox message reminds of, and the balances
    (invoice ref -> balance) it was rendered with."""

    outbox_id: int
    pairs: Sequence[tuple[str, int]]
    balances: Mapping[str, Decimal]


def record_sent(
    connection: Connection, company_id: str, messages: Iterable[SentPairs], now: datetime
) -> None:
    """Record each message's pairs as sent by it, in the caller's transaction; `IntegrityError`
    if one was recorded first. The balances are what the message was rendered with: the
    dispatcher plans it again if one changes meanwhile."""
    rows = [
        {**row, "outbox_id": sent.outbox_id, "balance": sent.balances.get(row["invoice_ref"])}
        for sent in messages
        for row in _rows(company_id, sent.pairs, "sent", now)
    ]
    insert_many(connection, LEDGER, rows)
