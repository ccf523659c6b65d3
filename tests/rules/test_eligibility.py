from __future__ import annotations

import pytest

from portal_rules import eligibility as reasons
from portal_rules.eligibility import (
    ineligibility_reason,
    is_eligible,
    plan_includes_portal,
    portal_switched_on,
)
from portal_rules.types import Plan, PortalStatus

from .factories import contact

S = PortalStatus


@pytest.mark.parametrize(
    ("plan", "expected"),
    [("basic", False), ("pro", True), ("plus", True), ("enterprise", True), (Plan.PRO, True)],
    ids=["basic", "pro", "plus", "enterprise", "enum"],
)
def test_plan_includes_portal(plan, expected: bool) -> None:
    assert plan_includes_portal(plan) is expected


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (contact(position=0), True),
        (contact(position=1), False),
        (contact(position=1, admin_enabled=True), True),
        (contact(position=0, admin_enabled=False), False),
        (contact(position=0, status=S.DISABLED), False),
        (contact(position=2, admin_enabled=True, status=S.DISABLED), False),
    ],
    ids=[
        "primary-on-by-default",
        "secondary-off-by-default",
        "secondary-enabled-by-admin",
        "primary-disabled-by-admin-flag",
        "primary-disabled-status",
        "disabled-wins-over-enabled-flag",
    ],
)
def test_portal_switched_on(facts, expected: bool) -> None:
    assert portal_switched_on(facts) is expected


@pytest.mark.parametrize(
    ("facts", "plan", "customer_visible", "reason"),
    [
        (contact(), "pro", True, None),
        (contact(status=S.ENABLED), "enterprise", True, None),
        (contact(status=S.PENDING), "plus", True, None),
        (contact(), "basic", True, reasons.NO_PORTAL_PLAN),
        (contact(), "pro", False, reasons.CUSTOMER_HIDDEN),
        (contact(in_source=False), "pro", True, reasons.NOT_IN_SOURCE),
        (contact(email="not-an-email"), "pro", True, reasons.INVALID_EMAIL),
        (contact(status=S.DISABLED), "pro", True, reasons.DISABLED),
        (contact(admin_enabled=False), "pro", True, reasons.DISABLED),
        (contact(position=1), "pro", True, reasons.NOT_ENABLED),
        (contact(position=1, admin_enabled=True), "pro", True, None),
        (contact(status=S.CONFLICT), "pro", True, reasons.CONFLICT),
    ],
    ids=[
        "primary-of-visible-customer-on-pro",
        "enabled-on-enterprise",
        "pending-on-plus",
        "basic-plan-has-no-portal",
        "hidden-customer",
        "email-removed-at-source",
        "invalid-email-never-eligible",
        "disabled-status",
        "disabled-flag",
        "secondary-not-enabled",
        "secondary-enabled-by-admin",
        "conflict",
    ],
)
def test_eligibility(facts, plan: str, customer_visible: bool, reason: str | None) -> None:
    assert ineligibility_reason(facts, plan=plan, customer_visible=customer_visible) == reason
    assert is_eligible(facts, plan=plan, customer_visible=customer_visible) is (reason is None)
