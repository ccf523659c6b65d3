"""Keep `contacts.portal_status` / `contacts.eligible` equal to what `portal_rules` decides.

Called after a page of customers is written (for the emails it touched) and after any
admin switch. Only rows whose outcome changed are updated, in one statement (`update_by_key`).

The status is local state the portal changes too: an invitation accepted (`pending` to
`enabled`) may commit between this read and its update, which takes no lock (a sync's run
opening with new settings, its last full-pull page for contacts of other pages, a page for
other customers' contacts of its emails). So a status is written only where it is still the
one read, and the emails whose contacts changed meanwhile are decided again over what they
hold now, as `store.writes._overrides_since` does for sent overrides.
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
_TRIES = 3  # passes over emails whose contacts changed meanwhile (the second reads them locked)


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
        for _ in range(_TRIES):
            done, stale = _recompute(connection, company_id, policy, batch)
            changed += done
            if not stale:
                break
            batch = sorted(stale)  # decided over contacts another transaction changed: again
    return changed


def _recompute(
    connection: Connection, company_id: str, policy: CompanyPolicy, emails: list[str] | None
) -> tuple[int, set[str]]:
    """Assess the contacts of `emails`; (rows written, the emails decided over a stale read)."""
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
        return 0, set()
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
    expected = {row.id: (row.portal_status, bool(row.eligible)) for row in rows}
    changed = []
    for row, account in zip(rows, accounts, strict=True):
        if str(account.status) != row.portal_status or account.eligible != row.eligible:
            changed.append((row.id, str(account.status), account.eligible, row.portal_status))
            expected[row.id] = (str(account.status), account.eligible)
    update_by_key(
        connection, CONTACTS, "id", ("portal_status", "eligible"), changed, unless_changed=("portal_status",)
    )
    if not changed:
        return 0, set()
    written = {row_id for row_id, *_ in changed}
    # the emails whose contacts were written (the whole company's: one read, not IN lists)
    decided = None if emails is None else {row.email for row in rows if row.id in written}
    return len(changed), _changed_since(connection, company_id, decided, expected)


def _changed_since(
    connection: Connection, company_id: str, emails: set[str] | None, expected: dict[int, tuple[str, bool]]
) -> set[str]:
    """Of `emails` (None: all), those whose contacts do not hold what was read or written for
    them: a status committed by someone else since the read (the update left it, or,
    unwritten, it changed the group's decision). Read after the update and locked
    (PostgreSQL; SQLite's writer is alone by then), so what this finds stays until commit."""
    stale: set[str] = set()
    ordered = [None] if emails is None else sorted(emails)
    for start in range(0, len(ordered), _CHUNK):
        query = select(CONTACTS.c.id, CONTACTS.c.email, CONTACTS.c.portal_status, CONTACTS.c.eligible).where(
            CONTACTS.c.company_id == company_id
        )
        if emails is not None:
            query = query.where(CONTACTS.c.email.in_(ordered[start : start + _CHUNK]))
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        for row_id, email, status, eligible in connection.execute(query):
            if expected.get(row_id, (status, bool(eligible))) != (status, bool(eligible)):
                stale.add(email)
    return stale
