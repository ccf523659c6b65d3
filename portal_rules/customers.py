"""Active-customer filtering: which customers are stored, and which the portal shows.

An inactive customer is imported only when the company imports inactive customers. One
imported earlier that later turns inactive (setting off) stays stored, marked inactive,
and is hidden: no portal rows, no invitations, no reminders. With the setting on,
inactive customers are treated like active ones everywhere, which is the point of the
setting (their customers can request portal access, see and be reminded of invoices).
"""

from __future__ import annotations

from portal_rules.types import CustomerFacts


def should_import(active: bool, import_inactive: bool, *, stored: bool = False) -> bool:
    """Whether a customer record from a sync is written to the store.

    A customer already `stored` is always written, so that turning inactive is recorded.
    """
    return active or import_inactive or stored


def portal_visible_customer(customer: CustomerFacts, import_inactive: bool) -> bool:
    """Whether a stored customer appears in the portal (and may be invited or reminded)."""
    if customer.deleted:
        return False
    return customer.active or import_inactive
