"""The settings a company's derived columns were decided with, and deciding them again when
the configuration changes.

`customers.portal_visible` and the contacts' portal status and eligibility are decided by
`portal_rules` when rows are written, from the page and the company's settings. A row the
source does not send again (an incremental sync reads what changed) would keep what an
earlier setting decided: an inactive customer imported while `import_inactive_customers`
was on would stay in the portal after it was turned off. So each sync begins by comparing
the settings with the ones kept in `companies.rules` and, when they differ, decides the
company's rows again, in the transaction that opens the run. Turning
`import_inactive_customers` on also needs the inactive customers the store never imported:
that run pulls everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Connection, select, update

from portal_rules.customers import portal_visible_customer
from portal_rules.types import CompanyPolicy, CustomerFacts
from store.accounts import recompute_accounts
from store.bulk import update_by_key
from store.tables import Company, Customer

COMPANIES = Company.__table__
CUSTOMERS = Customer.__table__

# What the derived columns depend on: visibility, eligibility (the plan's portal), conflicts.
RULE_SETTINGS = ("plan", "import_inactive_customers", "multi_account_portal")


@dataclass(frozen=True, slots=True)
class Settled:
    """What opening a run found: whether the company's rows were decided again, and whether
    the run must pull everything (customers an earlier setting kept out of the store)."""

    rederived: bool = False
    pull_all: bool = False


def settle_rules(connection: Connection, company_id: str, policy: CompanyPolicy) -> Settled:
    """Bring the company's derived columns in line with `policy` if its settings changed.

    A company not registered in the store (`companies`) has nothing to compare with: its
    rows are decided as they are written. Settings never recorded (a store older than the
    column) count as changed, with `import_inactive_customers` taken as off.
    """
    stored = connection.execute(select(COMPANIES.c.rules).where(COMPANIES.c.company_id == company_id)).first()
    if stored is None:
        return Settled()
    current = {name: _plain(getattr(policy, name)) for name in RULE_SETTINGS}
    before = json.loads(stored.rules) if stored.rules else None
    if before == current:
        return Settled()
    _decide_customers(connection, company_id, policy)
    recompute_accounts(connection, company_id, policy)
    connection.execute(
        update(COMPANIES).where(COMPANIES.c.company_id == company_id).values(rules=json.dumps(current))
    )
    turned_on = current["import_inactive_customers"] and not (before or {}).get("import_inactive_customers")
    return Settled(rederived=True, pull_all=turned_on)


def _decide_customers(connection: Connection, company_id: str, policy: CompanyPolicy) -> None:
    """Set `portal_visible` of the company's stored customers as `portal_rules` decides it now."""
    rows = connection.execute(
        select(
            CUSTOMERS.c.id,
            CUSTOMERS.c.ref,
            CUSTOMERS.c.active,
            CUSTOMERS.c.deleted,
            CUSTOMERS.c.portal_visible,
        ).where(CUSTOMERS.c.company_id == company_id)
    ).all()
    changed = []
    for row in rows:
        visible = portal_visible_customer(
            CustomerFacts(row.ref, row.active, row.deleted), policy.import_inactive_customers
        )
        if visible != row.portal_visible:
            changed.append((row.id, visible))
    update_by_key(connection, CUSTOMERS, "id", ("portal_visible",), changed)


def _plain(value: object) -> object:
    """A setting as JSON keeps it (an enum as its value)."""
    return value.value if isinstance(value, Enum) else value
