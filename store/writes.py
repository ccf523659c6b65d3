"""Set-based writes of a page of synced customers (with their contacts) and invoices.

Synced columns are overwritten; local columns (portal status, admin switches, reminder
pauses, sent overrides) are never in an UPDATE's SET list. Derived flags (`visible`,
`portal_visible`) come from `portal_rules`, computed here from the page and the local
state read for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Table, select, update

from portal_rules.adjustments import detect_adjustment
from portal_rules.contacts import customer_emails
from portal_rules.customers import portal_visible_customer, should_import
from portal_rules.records import CustomerRecord, InvoiceRecord
from portal_rules.types import CustomerFacts
from portal_rules.visibility import sent_and_live
from store.bulk import among, select_among, update_by_key
from store.tables import Adjustment, Contact, Customer, Invoice
from store.types import to_money
from store.upsert import insert_new, upsert

CUSTOMERS: Table = Customer.__table__
CONTACTS: Table = Contact.__table__
INVOICES: Table = Invoice.__table__
ADJUSTMENTS: Table = Adjustment.__table__


def write_customers(
    connection: Connection,
    company_id: str,
    customers: Sequence[CustomerRecord],
    *,
    import_inactive: bool,
    now: datetime,
    run_id: int | None = None,
) -> tuple[int, set[str]]:
    """Write a page of customers and their contacts; return (rows written, emails touched)."""
    deleted = [c.ref for c in customers if c.deleted]
    gone = mark_gone(connection, CUSTOMERS, company_id, deleted, now, run_id)
    emails = _drop_contacts(connection, company_id, deleted)
    customers = [c for c in customers if not c.deleted]
    stored = _stored_refs(connection, company_id, [c.ref for c in customers if not c.active], import_inactive)
    kept = [c for c in customers if should_import(c.active, import_inactive, stored=c.ref in stored)]
    rows = [
        (
            c.ref,
            c.display_name,
            c.active,
            c.updated_at,
            portal_visible_customer(CustomerFacts(c.ref, c.active), import_inactive),
        )
        for c in kept
    ]
    upsert(
        connection,
        CUSTOMERS,
        rows,
        ("company_id", "ref"),
        columns=("ref", "display_name", "active", "source_updated_at", "portal_visible"),
        shared={"company_id": company_id, "deleted": False, "synced_at": now, "seen_run": run_id},
    )
    return len(rows) + gone, emails | _write_contacts(connection, company_id, kept)


def _stored_refs(
    connection: Connection, company_id: str, inactive: Sequence[str], import_inactive: bool
) -> set[str]:
    """The inactive customers already stored: `should_import` asks only about those."""
    if import_inactive or not inactive:
        return set()
    return set(
        connection.scalars(
            select(CUSTOMERS.c.ref).where(
                CUSTOMERS.c.company_id == company_id, among(connection, CUSTOMERS.c.ref, inactive)
            )
        )
    )


def _drop_contacts(connection: Connection, company_id: str, refs: Sequence[str]) -> set[str]:
    """Contacts of customers deleted in the source leave it; their emails need re-assessing."""
    if not refs:
        return set()
    where = (CONTACTS.c.company_id == company_id, among(connection, CONTACTS.c.customer_ref, refs))
    emails = set(connection.scalars(select(CONTACTS.c.email).where(*where)))
    connection.execute(update(CONTACTS).where(*where).values(in_source=False))
    return emails


def _write_contacts(connection: Connection, company_id: str, customers: Sequence[CustomerRecord]) -> set[str]:
    """Upsert the page's contacts; their previous ones not listed again leave the source.

    Returns every email the page touched, before and after, for re-assessment.
    """
    refs = [c.ref for c in customers]
    previous: set[str] = set()
    if refs:
        where = (CONTACTS.c.company_id == company_id, among(connection, CONTACTS.c.customer_ref, refs))
        previous = set(
            connection.scalars(
                update(CONTACTS).where(*where).values(in_source=False).returning(CONTACTS.c.email)
            )
        )
    rows = [
        (c.ref, entry.email, entry.position, entry.valid)
        for c in customers
        for entry in customer_emails(c.emails)
    ]
    upsert(
        connection,
        CONTACTS,
        rows,
        ("company_id", "customer_ref", "email"),
        columns=("customer_ref", "email", "position", "valid"),
        shared={"company_id": company_id, "in_source": True},
    )
    return previous | {row[1] for row in rows}


def write_invoices(
    connection: Connection,
    company_id: str,
    invoices: Sequence[InvoiceRecord],
    *,
    now: datetime,
    run_id: int | None = None,
    new: bool = False,
) -> tuple[int, int]:
    """Write a page of invoices; record adjustments for reopened ones. Returns (rows, adjustments).

    A deletion only hides the stored row: sources often send nothing but the id with it.
    With `new` (none of the invoices is expected to be stored), nothing stored is read: the
    page is inserted, or `AlreadyStored` raised when one was there.
    """
    gone = mark_gone(connection, INVOICES, company_id, [i.ref for i in invoices if i.deleted], now, run_id)
    invoices = [i for i in invoices if not i.deleted]
    stored = {} if new else _stored_state(connection, company_id, [i.ref for i in invoices])
    rows = [
        (
            i.ref,
            i.customer_ref,
            i.doc_number,
            i.issue_date,
            i.due_date,
            i.currency,
            i.total,
            i.balance,
            i.source_sent,
            i.voided,
            i.draft,
            sent_and_live(i.source_sent, stored.get(i.ref, _NOTHING)[1], i.voided, False, i.draft),
            i.updated_at,
        )
        for i in invoices
    ]
    write = insert_new if new else upsert  # a new invoice is never an adjustment
    write(
        connection,
        INVOICES,
        rows,
        ("company_id", "ref"),
        columns=_INVOICE_COLUMNS,
        shared={"company_id": company_id, "deleted": False, "synced_at": now, "seen_run": run_id},
    )
    if not new:
        _overrides_since(connection, company_id, invoices, stored)
    adjustments = _adjustments(company_id, [i for i in invoices if i.ref in stored], stored, now)
    if adjustments:
        connection.execute(ADJUSTMENTS.insert(), adjustments)
    return len(rows) + gone, len(adjustments)


_NOTHING = (None, None)  # (stored balance, sent override) of an invoice the store holds no state for


def _stored_state(
    connection: Connection, company_id: str, refs: Sequence[str]
) -> dict[str, tuple[Decimal, bool | None]]:
    """(stored balance, sent override) of the page's stored invoices that either can matter to.

    Only a stored balance of 0 can make an adjustment and only a set override changes
    visibility, so other rows (nearly all of them) are left in the database.
    """
    if not refs:
        return {}
    query = select_among(
        connection,
        INVOICES.c.ref,
        refs,
        (INVOICES.c.ref, INVOICES.c.balance, INVOICES.c.sent_override),
        INVOICES.c.company_id == company_id,
        (INVOICES.c.balance == 0) | INVOICES.c.sent_override.is_not(None),
    )
    return {ref: (balance, override) for ref, balance, override in connection.execute(query)}


def _overrides_since(
    connection: Connection,
    company_id: str,
    invoices: Sequence[InvoiceRecord],
    stored: dict[str, tuple[Decimal, bool | None]],
) -> None:
    """Decide `visible` again for the page's invoices whose sent override an admin changed
    after `_stored_state` read it (`arsync invoice mark-sent` committing in between: the
    read takes no lock, so the upsert wrote the visibility of the override it read).

    Read after the upsert, which holds the rows (PostgreSQL waited for the admin's row lock;
    SQLite's writer is alone), so what this reads stays until the page commits. Invoices
    with an override are few: one probe per page, a row read only where one is set.
    """
    if not invoices:
        return
    query = select_among(
        connection,
        INVOICES.c.ref,
        [i.ref for i in invoices],
        (INVOICES.c.id, INVOICES.c.ref, INVOICES.c.sent_override),
        INVOICES.c.company_id == company_id,
        INVOICES.c.sent_override.is_not(None),
    )
    latest = {i.ref: i for i in invoices}  # a key twice in a page: the later row was written
    changed = [
        (id_, sent_and_live(latest[ref].source_sent, override, latest[ref].voided, False, latest[ref].draft))
        for id_, ref, override in connection.execute(query)
        if override != stored.get(ref, _NOTHING)[1]
    ]
    update_by_key(connection, INVOICES, "id", ("visible",), changed)


def _adjustments(
    company_id: str,
    invoices: Sequence[InvoiceRecord],
    stored: dict[str, tuple[Decimal, bool | None]],
    now: datetime,
) -> list[dict]:
    """The `adjustments_log` rows for the page's reopened invoices, in page order.

    A page naming an invoice twice is written as sequential upserts would write it (the
    later row wins), so each occurrence is compared with the balance the one before it
    left: the same reopening read twice is one adjustment, not two.
    """
    rows = []
    balances = {ref: balance for ref, (balance, _) in stored.items()}
    for invoice in invoices:
        # compared as stored, so an amount the column rounds away is no change
        new_balance = to_money(invoice.balance)
        adjustment = detect_adjustment(balances[invoice.ref], new_balance)
        balances[invoice.ref] = new_balance
        if adjustment is not None:
            rows.append(
                {
                    "company_id": company_id,
                    "invoice_ref": invoice.ref,
                    "detected_at": now,
                    "previous_balance": adjustment.previous_balance,
                    "new_balance": adjustment.new_balance,
                    "amount": adjustment.amount,
                }
            )
    return rows


def mark_gone(
    connection: Connection,
    table: Table,
    company_id: str,
    refs: Sequence[str],
    now: datetime,
    run_id: int | None,
) -> int:
    """Flag stored rows deleted in the source (and hidden); unknown refs need nothing.

    A deletion only flags the row: sources often send nothing but the id with it.
    """
    if not refs:
        return 0
    hidden = {INVOICES: {"visible": False}, CUSTOMERS: {"portal_visible": False}}.get(table, {})
    return connection.execute(
        update(table)
        .where(table.c.company_id == company_id, among(connection, table.c.ref, refs))
        .values(deleted=True, synced_at=now, seen_run=run_id, **hidden)
    ).rowcount


_INVOICE_COLUMNS = (
    "ref",
    "customer_ref",
    "doc_number",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "balance",
    "source_sent",
    "voided",
    "draft",
    "visible",
    "source_updated_at",
)
