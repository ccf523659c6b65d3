"""Admin switches on local state: contact portal access, sent overrides, reminder pauses.

Each re-derives what depends on it through `portal_rules` in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, select, update

from portal_rules.status import PortalEvent, next_status
from portal_rules.types import CompanyPolicy, PortalStatus
from portal_rules.visibility import hidden_reason, is_sent_and_live
from store.accounts import recompute_accounts
from store.facts import invoice_facts
from store.tables import Contact, Customer, Invoice

CONTACTS = Contact.__table__
CUSTOMERS = Customer.__table__
INVOICES = Invoice.__table__


class NotFound(LookupError):
    """The company has no such customer, contact or invoice (or the number names several)."""


def switch_contact(
    engine: Engine, company_id: str, customer_ref: str, email: str, *, enable: bool, policy: CompanyPolicy
) -> str:
    """`arsync portal enable|disable`: returns the contact's resulting status."""
    email = email.strip().lower()
    where = (
        CONTACTS.c.company_id == company_id,
        CONTACTS.c.customer_ref == customer_ref,
        CONTACTS.c.email == email,
    )
    with engine.begin() as connection:
        status = connection.scalar(select(CONTACTS.c.portal_status).where(*where))
        if status is None:
            raise NotFound(f"company {company_id!r} has no contact {email!r} for customer {customer_ref!r}")
        new = next_status(status, PortalEvent.ENABLE if enable else PortalEvent.DISABLE)
        connection.execute(
            update(CONTACTS).where(*where).values(admin_enabled=enable, portal_status=str(new))
        )
        recompute_accounts(connection, company_id, policy, [email])
        return connection.scalar(select(CONTACTS.c.portal_status).where(*where))


def conflicts(engine: Engine, company_id: str) -> dict[str, list[tuple[str, str]]]:
    """Emails shared by several customers where only one may be enabled: email -> [(ref, status)]."""
    with engine.connect() as connection:
        conflicted = select(CONTACTS.c.email).where(
            CONTACTS.c.company_id == company_id, CONTACTS.c.portal_status == str(PortalStatus.CONFLICT)
        )
        rows = connection.execute(
            select(CONTACTS.c.email, CONTACTS.c.customer_ref, CONTACTS.c.portal_status)
            .where(
                CONTACTS.c.company_id == company_id,
                CONTACTS.c.email.in_(conflicted),
                CONTACTS.c.in_source.is_(True),
            )
            .order_by(CONTACTS.c.email, CONTACTS.c.customer_ref)
        ).all()
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for email, ref, status in rows:
        out[email].append((ref, status))
    return dict(out)


@dataclass(frozen=True, slots=True)
class SentOverride:
    """What `set_sent_override` did: whose invoice it was, and why the portal now hides it
    (`portal_rules.visibility.hidden_reason`), None when the portal shows it."""

    customer_ref: str
    hidden: str | None
    ref: str = ""  # the invoice's id in the accounting system
    doc_number: str | None = None  # the number the customer and the admin know it by


def invoice_ref_for(connection: Connection, company_id: str, given: str) -> str:
    """The invoice `given` names: its id in the accounting system, or else its number.

    QuickBooks' Id is not the invoice number an admin reads on the invoice (`222` is
    "1122"), so a number is taken when no id matches and one live invoice carries it (or,
    none live, one deleted one). A number several invoices share names none of them.
    """
    where = (INVOICES.c.company_id == company_id,)
    if connection.scalar(select(INVOICES.c.ref).where(*where, INVOICES.c.ref == given)) is not None:
        return given
    rows = connection.execute(
        select(INVOICES.c.ref, INVOICES.c.deleted).where(*where, INVOICES.c.doc_number == given)
    ).all()
    live = [ref for ref, deleted in rows if not deleted] or [ref for ref, _ in rows]
    if not live:
        raise NotFound(f"company {company_id!r} has no invoice {given!r}")
    if len(live) > 1:
        refs = ", ".join(sorted(live))
        raise NotFound(f"invoice number {given!r} is on several invoices (ids {refs}): give the id")
    return live[0]


def set_sent_override(engine: Engine, company_id: str, invoice_ref: str, sent: bool) -> SentOverride:
    """`arsync invoice mark-sent|mark-unsent`: `invoice_ref` is the invoice's id, or its
    number when no id matches (`invoice_ref_for`).

    Marked sent, an invoice is still hidden while its customer is not in the portal (inactive,
    or never imported): the store keeps the invoice's own visibility, the views add the customer's.
    The customer's health, which counts visible invoices, is the caller's to recompute.
    """
    with engine.begin() as connection:
        ref = invoice_ref_for(connection, company_id, invoice_ref)
        where = (INVOICES.c.company_id == company_id, INVOICES.c.ref == ref)
        while True:
            row = connection.execute(select(INVOICES).where(*where)).mappings().first()
            if row is None:
                raise NotFound(f"company {company_id!r} has no invoice {invoice_ref!r}")
            facts = replace(invoice_facts(row), sent_override=sent)
            # Written only while the row still holds the facts `visible` was decided from: a
            # sync committing a void, deletion or draft in between (the read takes no lock)
            # would otherwise be overwritten with the visibility of the live invoice it read.
            still = [INVOICES.c[name] == row[name] for name in _VISIBILITY_FACTS]
            written = connection.execute(
                update(INVOICES)
                .where(*where, *still)
                .values(sent_override=sent, visible=is_sent_and_live(facts))
            ).rowcount
            if written:
                break
        customer_visible = connection.scalar(
            select(CUSTOMERS.c.portal_visible).where(
                CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.ref == row["customer_ref"]
            )
        )
    hidden = hidden_reason(facts, bool(customer_visible))
    return SentOverride(row["customer_ref"], hidden, ref, row["doc_number"])


# The synced columns `is_sent_and_live` reads (besides the override being set).
_VISIBILITY_FACTS = ("source_sent", "voided", "deleted", "draft")


def set_reminders_paused(engine: Engine, company_id: str, customer_ref: str, paused: bool) -> None:
    """`arsync customer pause-reminders|resume-reminders`."""
    with engine.begin() as connection:
        changed = connection.execute(
            update(CUSTOMERS)
            .where(CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.ref == customer_ref)
            .values(reminders_paused=paused)
        ).rowcount
    if not changed:
        raise NotFound(f"company {company_id!r} has no customer {customer_ref!r}")
