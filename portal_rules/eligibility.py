"""Portal eligibility of one contact.

Eligible when the company's plan includes the portal, the customer is portal-visible
(imported and active, or inactive but imported by setting), the contact is still in the
source with a valid email, and it is portal-enabled: the primary contact by default,
others once an admin enabled them, never a disabled one, never one in conflict.
"""

from __future__ import annotations

from portal_rules.contacts import is_valid_email
from portal_rules.customers import portal_visible_customer
from portal_rules.types import CompanyPolicy, ContactFacts, CustomerFacts, Plan, PortalStatus

PORTAL_PLANS = frozenset({Plan.PRO, Plan.PLUS, Plan.ENTERPRISE})

# The reasons `ineligibility_reason` gives (shown by the CLI), checked in this order.
NO_PORTAL_PLAN = "the company's plan does not include the portal"
CUSTOMER_HIDDEN = "the customer is not shown in the portal (inactive or deleted)"
NOT_IN_SOURCE = "the email is no longer listed by the accounting system"
INVALID_EMAIL = "the email address is not valid"
DISABLED = "portal access was disabled by an admin"
NOT_ENABLED = "only the primary contact is enabled by default; an admin can enable others"
CONFLICT = "the email has portal access through another customer"


def plan_includes_portal(plan: Plan | str) -> bool:
    """The portal is part of the pro, plus and enterprise plans, not basic."""
    return Plan(plan) in PORTAL_PLANS


def portal_switched_on(contact: ContactFacts) -> bool:
    """The contact-level switch: primary on by default, others on by an admin, off if disabled."""
    if contact.portal_status is PortalStatus.DISABLED or contact.admin_enabled is False:
        return False
    return contact.admin_enabled is True or contact.primary


def ineligibility_reason(contact: ContactFacts, *, plan: Plan | str, customer_visible: bool) -> str | None:
    """Why `contact` may not use the portal, or None when it is eligible."""
    if not plan_includes_portal(plan):
        return NO_PORTAL_PLAN
    if not customer_visible:
        return CUSTOMER_HIDDEN
    if not contact.in_source:
        return NOT_IN_SOURCE
    if not is_valid_email(contact.email):
        return INVALID_EMAIL
    if contact.portal_status is PortalStatus.DISABLED or contact.admin_enabled is False:
        return DISABLED
    if not portal_switched_on(contact):
        return NOT_ENABLED
    if contact.portal_status is PortalStatus.CONFLICT:
        return CONFLICT
    return None


def is_eligible(contact: ContactFacts, *, plan: Plan | str, customer_visible: bool) -> bool:
    """Whether `contact` may be invited to and log in to the portal."""
    return ineligibility_reason(contact, plan=plan, customer_visible=customer_visible) is None


def still_portal_visible(customer: CustomerFacts, policy: CompanyPolicy) -> bool:
    """Whether a customer the store shows in the portal still may be under the company's
    current settings (`import_inactive_customers` turned off since: an inactive one may not)."""
    return portal_visible_customer(customer, policy.import_inactive_customers)


def eligible_under(policy: CompanyPolicy, *, stored_eligible: bool, customer: CustomerFacts) -> bool:
    """Whether a contact the last sync found eligible (`stored_eligible`) still is under the
    company's current settings.

    The store decides eligibility again only at the next sync (`store.rule_settings`), but an
    invitation must not wait for it: a plan without the portal, or an inactive customer once
    inactive customers are no longer imported, is refused now. This only narrows: a contact
    the new settings would make eligible waits for that sync, which decides it in full.
    """
    return stored_eligible and plan_includes_portal(policy.plan) and still_portal_visible(customer, policy)
