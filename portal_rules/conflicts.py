"""Emails shared by several customers of one company.

With `multi_account_portal = true` one login reaches every customer of the email, so
there is no conflict. With `false` only one of them may be portal-enabled: among the
contacts that want access (customer portal-visible, email in source and valid, contact
switched on), the one that keeps it is chosen deterministically —

1. one already `enabled`, then one `pending` (never take access away from a customer who
   has it or has been invited to it);
2. else one an admin explicitly enabled;
3. else the lowest customer ref (numerically for numeric refs, as QuickBooks uses).

The others get `conflict`. A `disabled` contact stays `disabled`, and a `conflict` that
no longer applies (mode switched, other contact disabled, customer hidden) is released
to `not_invited`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable

from portal_rules.contacts import is_valid_email
from portal_rules.eligibility import portal_switched_on
from portal_rules.types import ContactFacts, ContactKey, PortalStatus

_STATUS_RANK = {PortalStatus.ENABLED: 0, PortalStatus.PENDING: 1}


def resolve_conflicts(
    contacts: Iterable[ContactFacts],
    *,
    multi_account_portal: bool,
    visible_customers: Container[str],
) -> dict[ContactKey, PortalStatus]:
    """The status of every given contact after resolving shared emails.

    Pass all contacts of the emails concerned (at most one per customer and email) and
    the refs of the portal-visible customers among theirs.
    """
    contacts = list(contacts)
    statuses = {contact.key: _released(contact.portal_status) for contact in contacts}
    if multi_account_portal:
        return statuses
    by_email: dict[str, list[ContactFacts]] = defaultdict(list)
    for contact in contacts:
        if _competes(contact, visible_customers):
            by_email[contact.email].append(contact)
    for group in by_email.values():
        keeper = min(group, key=_keeper_rank)
        statuses[keeper.key] = _released(keeper.portal_status)
        for contact in group:
            if contact is not keeper:
                statuses[contact.key] = PortalStatus.CONFLICT
    return statuses


def ref_order(ref: str) -> tuple[int, int, str]:
    """Sort key for customer refs: numeric refs by value, before the others by text."""
    if ref.isascii() and ref.isdigit():
        return (0, int(ref), ref)
    return (1, 0, ref)


def _competes(contact: ContactFacts, visible_customers: Container[str]) -> bool:
    return (
        contact.customer_ref in visible_customers
        and contact.in_source
        and is_valid_email(contact.email)
        and portal_switched_on(contact)
    )


def _keeper_rank(contact: ContactFacts) -> tuple[int, int, tuple[int, int, str]]:
    explicitly_enabled = 0 if contact.admin_enabled is True else 1
    return (
        _STATUS_RANK.get(contact.portal_status, 2),
        explicitly_enabled,
        ref_order(contact.customer_ref),
    )


def _released(status: PortalStatus) -> PortalStatus:
    return PortalStatus.NOT_INVITED if status is PortalStatus.CONFLICT else status
