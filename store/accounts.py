"""Keep `contacts.portal_status` / `contacts.eligible` equal to what `portal_rules` decides.

Called after a page of customers is written (for the emails it touched) and after any
admin switch. Only rows whose outcome changed are updated, in one statement (`update_by_key`).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select

from portal_rules.accounts import assess_accounts
from portal_rules.types import CompanyPolicy, ContactFacts, CustomerFacts
from store.bulk import update_by_key
from store.tables import Contact, Customer

CONTACTS = Contact.__table__
CUSTOMERS = Customer.__table__
_CHUNK = 900  # stay under SQLite's bound-parameter limits comfortably


def recompute_accounts(
    connection: Connection, company_id: str, policy: CompanyPolicy, emails: Collection[str] | None = None
) -> int:
    """Re-assess every contact of `emails` (all contacts when None); return rows changed."""
    if emails is not None and not emails:
        return 0
    batches = (
        [None] if emails is None else [list(emails)[i : i + _CHUNK] for i in range(0, len(emails), _CHUNK)]
    )
    changed = 0
    for batch in batches:
        changed += _recompute(connection, company_id, policy, batch)
    return changed


def _recompute(
    connection: Connection, company_id: str, policy: CompanyPolicy, emails: list[str] | None
) -> int:
    query = (
        select(
            CONTACTS.c.id,
            CONTACTS.c.customer_ref,
            CONTACTS.c.email,
            CONTACTS.c.position,
            CONTACTS.c.in_source,
            CONTACTS.c.portal_status,
            CONTACTS.c.admin_enabled,
            CONTACTS.c.eligible,
            CUSTOMERS.c.active,
            CUSTOMERS.c.deleted,
        )
        .join(
            CUSTOMERS,
            (CUSTOMERS.c.company_id == CONTACTS.c.company_id) & (CUSTOMERS.c.ref == CONTACTS.c.customer_ref),
        )
        .where(CONTACTS.c.company_id == company_id)
    )
    if emails is not None:
        query = query.where(CONTACTS.c.email.in_(emails))
    rows = connection.execute(query).all()
    if not rows:
        return 0
    customers: dict[str, CustomerFacts] = {}
    for row in rows:  # one per customer, not per contact: the joined columns are the customer's
        if row.customer_ref not in customers:
            customers[row.customer_ref] = CustomerFacts(row.customer_ref, row.active, row.deleted)
    facts = [
        ContactFacts(
            row.customer_ref, row.email, row.position, row.in_source, row.portal_status, row.admin_enabled
        )
        for row in rows
    ]
    accounts = assess_accounts(policy, customers, facts)
    changed = [
        (row.id, str(account.status), account.eligible)
        for row, account in zip(rows, accounts, strict=True)
        if str(account.status) != row.portal_status or account.eligible != row.eligible
    ]
    update_by_key(connection, CONTACTS, "id", ("portal_status", "eligible"), changed)
    return len(changed)
