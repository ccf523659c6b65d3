"""Set-based writes of a page of synced customers (with their contacts) and invoices.

Synced columns are overwritten; local columns (portal status, admin switches, reminder
pauses, sent overrides) are never in an UPDATE's SET list. Derived flags (`visible`,
`portal_visible`) come from `portal_rules`, computed here from the page and the local
state read for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Table, select, update

from portal_rules.adjustments import detect_adjustment
from portal_rules.contacts import customer_emails
from portal_rules.customers import portal_visible_customer, should_import
from portal_rules.records import CustomerRecord, InvoiceRecord
from portal_rules.types import CustomerFacts, InvoiceFacts
from portal_rules.visibility import is_sent_and_live
from store.bulk import upsert
from store.tables import Adjustment, Contact, Customer, Invoice
from store.types import to_money

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
    refs = [c.ref for c in customers]
    stored = set(
        connection.scalars(
            select(CUSTOMERS.c.ref).where(CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.ref.in_(refs))
        )
    )
    kept = [c for c in customers if should_import(c.active, import_inactive, stored=c.ref in stored)]
    rows = [
        {
            "company_id": company_id,
            "ref": c.ref,
            "display_name": c.display_name,
            "active": c.active,
            "deleted": False,
            "source_updated_at": c.updated_at,
            "synced_at": now,
            "seen_run": run_id,
            "portal_visible": portal_visible_customer(CustomerFacts(c.ref, c.active), import_inactive),
        }
        for c in kept
    ]
    upsert(
        connection,
        CUSTOMERS,
        rows,
        ("company_id", "ref"),
        ("display_name", "active", "deleted", "source_updated_at", "synced_at", "portal_visible", "seen_run"),
    )
    return len(rows) + gone, emails | _write_contacts(connection, company_id, kept)


def _drop_contacts(connection: Connection, company_id: str, refs: Sequence[str]) -> set[str]:
    """Contacts of customers deleted in the source leave it; their emails need re-assessing."""
    if not refs:
        return set()
    where = (CONTACTS.c.company_id == company_id, CONTACTS.c.customer_ref.in_(refs))
    emails = set(connection.scalars(select(CONTACTS.c.email).where(*where)))
    connection.execute(update(CONTACTS).where(*where).values(in_source=False))
    return emails


def _write_contacts(connection: Connection, company_id: str, customers: Sequence[CustomerRecord]) -> set[str]:
    refs = [c.ref for c in customers]
    previous = set(
        connection.scalars(
            select(CONTACTS.c.email).where(
                CONTACTS.c.company_id == company_id, CONTACTS.c.customer_ref.in_(refs)
            )
        )
    )
    if refs:
        connection.execute(
            update(CONTACTS)
            .where(CONTACTS.c.company_id == company_id, CONTACTS.c.customer_ref.in_(refs))
            .values(in_source=False)
        )
    rows = [
        {
            "company_id": company_id,
            "customer_ref": c.ref,
            "email": entry.email,
            "position": entry.position,
            "valid": entry.valid,
            "in_source": True,
        }
        for c in customers
        for entry in customer_emails(c.emails)
    ]
    upsert(
        connection,
        CONTACTS,
        rows,
        ("company_id", "customer_ref", "email"),
        ("position", "valid", "in_source"),
    )
    return previous | {row["email"] for row in rows}


def write_invoices(
    connection: Connection,
    company_id: str,
    invoices: Sequence[InvoiceRecord],
    *,
    now: datetime,
    run_id: int | None = None,
) -> tuple[int, int]:
    """Write a page of invoices; record adjustments for reopened ones. Returns (rows, adjustments).

    A deletion only hides the stored row: sources often send nothing but the id with it.
    """
    gone = mark_gone(connection, INVOICES, company_id, [i.ref for i in invoices if i.deleted], now, run_id)
    invoices = [i for i in invoices if not i.deleted]
    refs = [i.ref for i in invoices]
    stored = {
        ref: (balance, override)
        for ref, balance, override in connection.execute(
            select(INVOICES.c.ref, INVOICES.c.balance, INVOICES.c.sent_override).where(
                INVOICES.c.company_id == company_id, INVOICES.c.ref.in_(refs)
            )
        )
    }
    rows, adjustments = [], []
    for invoice in invoices:
        previous_balance, override = stored.get(invoice.ref, (None, None))
        balance = to_money(invoice.balance)  # as stored, so a rounded-away change is no change
        facts = InvoiceFacts(
            ref=invoice.ref,
            customer_ref=invoice.customer_ref,
            balance=balance,
            total=to_money(invoice.total),
            source_sent=invoice.source_sent,
            sent_override=override,
            voided=invoice.voided,
            deleted=invoice.deleted,
            draft=invoice.draft,
        )
        rows.append({**_invoice_row(company_id, invoice, is_sent_and_live(facts), now), "seen_run": run_id})
        adjustment = detect_adjustment(previous_balance, balance)
        if adjustment is not None:
            adjustments.append(
                {
                    "company_id": company_id,
                    "invoice_ref": invoice.ref,
                    "detected_at": now,
                    "previous_balance": adjustment.previous_balance,
                    "new_balance": adjustment.new_balance,
                    "amount": adjustment.amount,
                }
            )
    upsert(connection, INVOICES, rows, ("company_id", "ref"), _INVOICE_SYNCED)
    if adjustments:
        connection.execute(ADJUSTMENTS.insert(), adjustments)
    return len(rows) + gone, len(adjustments)


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
        .where(table.c.company_id == company_id, table.c.ref.in_(refs))
        .values(deleted=True, synced_at=now, seen_run=run_id, **hidden)
    ).rowcount


_INVOICE_SYNCED = (
    "customer_ref",
    "doc_number",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "balance",
    "source_sent",
    "voided",
    "deleted",
    "draft",
    "visible",
    "source_updated_at",
    "synced_at",
    "seen_run",
)


def _invoice_row(company_id: str, invoice: InvoiceRecord, visible: bool, now: datetime) -> dict:
    return {
        "company_id": company_id,
        "ref": invoice.ref,
        "customer_ref": invoice.customer_ref,
        "doc_number": invoice.doc_number,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "currency": invoice.currency,
        "total": invoice.total,
        "balance": invoice.balance,
        "source_sent": invoice.source_sent,
        "voided": invoice.voided,
        "deleted": invoice.deleted,
        "draft": invoice.draft,
        "visible": visible,
        "source_updated_at": invoice.updated_at,
        "synced_at": now,
    }
