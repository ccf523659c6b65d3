"""Admin switches on local state: contact portal access, sent overrides, reminder pauses.

Each re-derives what depends on it through `portal_rules` in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from sqlalchemy import Engine, select, update

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
    """The company has no such customer, contact or invoice."""


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


def set_sent_override(engine: Engine, company_id: str, invoice_ref: str, sent: bool) -> SentOverride:
    """`arsync invoice mark-sent|mark-unsent`.

    Marked sent, an invoice is still hidden while its customer is not in the portal (inactive,
    or never imported): the store keeps the invoice's own visibility, the views add the customer's.
    The customer's health, which counts visible invoices, is the caller's to recompute.
    """
    where = (INVOICES.c.company_id == company_id, INVOICES.c.ref == invoice_ref)
    with engine.begin() as connection:
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
    return SentOverride(row["customer_ref"], hidden_reason(facts, bool(customer_visible)))


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
