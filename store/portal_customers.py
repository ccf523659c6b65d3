"""Whether a customer is in the portal (a row of `portal_customers`), for the portal API's 404s."""

from __future__ import annotations

from sqlalchemy import Engine, select

from store.tables import Customer

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
