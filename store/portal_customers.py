"""Portal customers: whether one is in the portal (a row of `portal_customers`, for the portal
API's 404s) or at least in the store, their display names, and the one with the most visible
invoices (the demo's)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from portal_rules.types import CustomerFacts
from store.tables import Customer, Invoice

CUSTOMERS = Customer.__table__


def in_portal(engine: Engine, company_id: str, customer_ref: str) -> bool:
    """True when the customer is imported and shown by the portal (active, or inactive by setting)."""
    with engine.connect() as connection:
        found = connection.scalar(
            select(CUSTOMERS.c.id).where(
                CUSTOMERS.c.company_id == company_id,
                CUSTOMERS.c.ref == customer_ref,
                CUSTOMERS.c.portal_visible.is_(True),
            )
        )
    return found is not None


def stored_customer(engine: Engine, company_id: str, customer_ref: str) -> CustomerFacts | None:
    """The customer of this ref as the books last gave it (active, deleted), in the portal or
    not; None when there is none."""
    with engine.connect() as connection:
        of_company = CUSTOMERS.c.company_id == company_id
        row = connection.execute(
            select(CUSTOMERS.c.active, CUSTOMERS.c.deleted).where(of_company, CUSTOMERS.c.ref == customer_ref)
        ).first()
    return None if row is None else CustomerFacts(customer_ref, bool(row.active), bool(row.deleted))


def customer_names(connection, company_id: str, refs: list[str]) -> dict[str, str]:
    """Display names by ref, asked 500 refs at a time (a statement's parameters are bounded)."""
    names: dict[str, str] = {}
    for start in range(0, len(refs), 500):
        rows = connection.execute(
            select(CUSTOMERS.c.ref, CUSTOMERS.c.display_name).where(
                CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.ref.in_(list(refs[start : start + 500]))
            )
        )
        names.update(rows.all())
    return names


def busiest_customer(engine: Engine, company_id: str) -> str | None:
    """The portal customer with the most visible invoices (ties: the lowest ref)."""
    query = (
        select(Invoice.customer_ref)
        .join(Customer, (Customer.company_id == Invoice.company_id) & (Customer.ref == Invoice.customer_ref))
        .where(Invoice.company_id == company_id, Invoice.visible.is_(True), Customer.portal_visible.is_(True))
        .group_by(Invoice.customer_ref)
        .order_by(func.count().desc(), Invoice.customer_ref)
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.scalar(query)
