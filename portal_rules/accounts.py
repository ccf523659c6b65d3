"""The `portal_accounts` rows of a company: status after conflicts, and eligibility.

This is the one call a sync makes after writing customers and contacts; its output is
what the store keeps in `contacts.portal_status` and `contacts.eligible`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from portal_rules.conflicts import resolve_conflicts
from portal_rules.contacts import normalize_email
from portal_rules.customers import portal_visible_customer
from portal_rules.eligibility import is_eligible
from portal_rules.types import (
    CompanyPolicy,
    ContactFacts,
    CustomerFacts,
    PortalAccount,
    PortalStatus,
)


def assess_accounts(
    policy: CompanyPolicy,
    customers: Mapping[str, CustomerFacts],
    contacts: Iterable[ContactFacts],
) -> tuple[PortalAccount, ...]:
    """Status and eligibility of each contact, in the order given.

    `customers` maps ref -> facts for (at least) the contacts' customers; a contact whose
    customer is missing is treated as hidden. Pass every contact of the emails concerned,
    so that shared emails are resolved against all their customers.
    """
    contacts = list(contacts)
    visible = {
        ref
        for ref, customer in customers.items()
        if portal_visible_customer(customer, policy.import_inactive_customers)
    }
    statuses = resolve_conflicts(
        contacts,
        multi_account_portal=policy.multi_account_portal,
        visible_customers=visible,
    )
    accounts = []
    for contact in contacts:
        status = statuses[contact.key]
        resolved = contact if status is contact.portal_status else replace(contact, portal_status=status)
        eligible = is_eligible(resolved, plan=policy.plan, customer_visible=contact.customer_ref in visible)
        accounts.append(PortalAccount(contact.customer_ref, contact.email, resolved.portal_status, eligible))
    return tuple(accounts)


def reachable_accounts(accounts: Iterable[PortalAccount], email: str) -> tuple[PortalAccount, ...]:
    """The customer accounts one login (`email`) may open: eligible and `enabled`.

    With a single-account portal, conflict resolution leaves at most one; with a
    multi-account portal the login lists them all and lets the customer switch.
    """
    email = normalize_email(email)
    return tuple(
        account
        for account in accounts
        if account.email == email and account.eligible and account.status is PortalStatus.ENABLED
    )
