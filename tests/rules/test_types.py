from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal_rules.types import (
    CompanyPolicy,
    ContactFacts,
    InvoiceFacts,
    Plan,
    PortalAccount,
    PortalStatus,
)
from portal_rules.windows import DeliveryWindow


def test_portal_status_values_are_the_public_contract() -> None:
    assert [s.value for s in PortalStatus] == [
        "not_invited",
        "pending",
        "enabled",
        "disabled",
        "conflict",
    ]


def test_plan_values() -> None:
    assert [p.value for p in Plan] == ["basic", "pro", "plus", "enterprise"]


@pytest.mark.parametrize(
    ("balance", "total"),
    [(12.5, Decimal("12.5")), (Decimal("12.5"), 12.5), (12, Decimal("12"))],
    ids=["float-balance", "float-total", "int-balance"],
)
def test_invoice_money_must_be_decimal(balance, total) -> None:
    with pytest.raises(TypeError, match="must be a Decimal"):
        InvoiceFacts(ref="I1", customer_ref="C1", balance=balance, total=total, due_date=date(2026, 6, 1))


def test_company_policy_accepts_configuration_shapes() -> None:
    policy = CompanyPolicy(
        plan="enterprise",
        timezone="Australia/Sydney",
        reminder_offsets_days=[0, 10],  # type: ignore[arg-type]
        delivery_days=["sat", "sun"],  # type: ignore[arg-type]
        delivery_from_hour=22,
        delivery_to_hour=5,
    )
    assert policy.reminder_offsets_days == (0, 10)
    assert policy.delivery_window == DeliveryWindow(frozenset({"sat", "sun"}), 22, 5, "Australia/Sydney")


def test_company_policy_defaults_follow_the_configuration_contract() -> None:
    policy = CompanyPolicy(plan="pro", timezone="Europe/Paris")
    assert policy.plan is Plan.PRO
    assert policy.reminder_offsets_days == (-3, 0, 7, 14, 30)
    assert policy.invitation_ttl_days == 14
    assert policy.delivery_window == DeliveryWindow(
        frozenset({"mon", "tue", "wed", "thu", "fri"}), 9, 17, "Europe/Paris"
    )


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"plan": "gold"}, ValueError),
        ({"invitation_ttl_days": 0}, ValueError),
        ({"timezone": "Nowhere/Special"}, ValueError),
        ({"delivery_days": ["mon", "someday"]}, ValueError),
        ({"delivery_to_hour": 24}, ValueError),
    ],
    ids=["unknown-plan", "zero-ttl", "unknown-time-zone", "unknown-day", "hour-24"],
)
def test_company_policy_refuses_bad_settings(settings: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        CompanyPolicy(**({"plan": "pro", "timezone": "UTC"} | settings))


@pytest.mark.parametrize(
    "build",
    [
        lambda: ContactFacts(customer_ref="C1", email=" Ann@Example.COM ", portal_status="pending"),
        lambda: PortalAccount(customer_ref="C1", email=" Ann@Example.COM ", status="pending", eligible=True),
    ],
    ids=["contact", "account"],
)
def test_contacts_are_normalized_on_construction(build) -> None:
    built = build()
    assert built.key == ("C1", "ann@example.com")
    assert built.email == "ann@example.com"
