from __future__ import annotations

import pytest

from portal_rules.accounts import assess_accounts, reachable_accounts
from portal_rules.types import CompanyPolicy, PortalAccount, PortalStatus

from .factories import account, contact, customer

S = PortalStatus
SHARED = "ap@shared.example"


def _policy(**overrides) -> CompanyPolicy:
    settings = {"plan": "pro", "timezone": "America/New_York", "multi_account_portal": True}
    return CompanyPolicy(**(settings | overrides))


CUSTOMERS = {
    "1": customer("1"),
    "2": customer("2"),
    "3": customer("3", active=False),
}


@pytest.mark.parametrize(
    ("policy", "contacts", "expected"),
    [
        (
            _policy(),
            [contact("1", SHARED), contact("2", SHARED)],
            [account("1", SHARED, S.NOT_INVITED, True), account("2", SHARED, S.NOT_INVITED, True)],
        ),
        (
            _policy(multi_account_portal=False),
            [contact("2", SHARED, status=S.ENABLED), contact("1", SHARED)],
            [account("2", SHARED, S.ENABLED, True), account("1", SHARED, S.CONFLICT, False)],
        ),
        (
            _policy(plan="basic"),
            [contact("1", "a@example.com", status=S.ENABLED)],
            [account("1", "a@example.com", S.ENABLED, False)],
        ),
        (
            _policy(),
            [contact("3", "c@example.com")],
            [account("3", "c@example.com", S.NOT_INVITED, False)],
        ),
        (
            _policy(import_inactive_customers=True),
            [contact("3", "c@example.com")],
            [account("3", "c@example.com", S.NOT_INVITED, True)],
        ),
        (
            _policy(multi_account_portal=False),
            [contact("3", SHARED, status=S.ENABLED), contact("1", SHARED)],
            [account("3", SHARED, S.ENABLED, False), account("1", SHARED, S.NOT_INVITED, True)],
        ),
        (
            _policy(),
            [contact("1", "Kept.Invalid@", position=0), contact("1", "b@example.com", position=1)],
            [
                account("1", "kept.invalid@", S.NOT_INVITED, False),
                account("1", "b@example.com", S.NOT_INVITED, False),
            ],
        ),
        (
            _policy(),
            [contact("404", "lost@example.com")],
            [account("404", "lost@example.com", S.NOT_INVITED, False)],
        ),
    ],
    ids=[
        "multi-account-shared-email-both-eligible",
        "single-account-shared-email-one-conflict",
        "basic-plan-nobody-eligible-status-kept",
        "inactive-customer-hidden-not-eligible",
        "inactive-customer-imported-by-setting-eligible",
        "hidden-customer-does-not-block-an-active-one",
        "invalid-primary-kept-ineligible-secondary-needs-admin",
        "unknown-customer-treated-as-hidden",
    ],
)
def test_assess_accounts(policy: CompanyPolicy, contacts, expected: list[PortalAccount]) -> None:
    assert list(assess_accounts(policy, CUSTOMERS, contacts)) == expected


ACCOUNTS = [
    account("1", SHARED, S.ENABLED, True),
    account("2", SHARED, S.ENABLED, True),
    account("3", SHARED, S.PENDING, True),
    account("4", SHARED, S.ENABLED, False),
    account("5", "other@example.com", S.ENABLED, True),
]


@pytest.mark.parametrize(
    ("email", "refs"),
    [(SHARED, ["1", "2"]), (" AP@Shared.Example", ["1", "2"]), ("nobody@example.com", [])],
    ids=["enabled-and-eligible-only", "email-normalized", "unknown-email"],
)
def test_reachable_accounts(email: str, refs: list[str]) -> None:
    assert [a.customer_ref for a in reachable_accounts(ACCOUNTS, email)] == refs
