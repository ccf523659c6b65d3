from __future__ import annotations

import pytest

from portal_rules.conflicts import ref_order, resolve_conflicts
from portal_rules.types import PortalStatus

from .factories import contact

S = PortalStatus
SHARED = "ap@shared.example"
ALL = frozenset({"1", "2", "9", "10", "A", "B"})


@pytest.mark.parametrize(
    ("contacts", "multi", "visible", "expected"),
    [
        (
            [contact("2", SHARED), contact("10", SHARED)],
            True,
            ALL,
            {("2", SHARED): S.NOT_INVITED, ("10", SHARED): S.NOT_INVITED},
        ),
        (
            [contact("10", SHARED), contact("2", SHARED)],
            False,
            ALL,
            {("2", SHARED): S.NOT_INVITED, ("10", SHARED): S.CONFLICT},
        ),
        (
            [contact("2", SHARED), contact("10", SHARED, status=S.ENABLED)],
            False,
            ALL,
            {("2", SHARED): S.CONFLICT, ("10", SHARED): S.ENABLED},
        ),
        (
            [contact("2", SHARED, status=S.PENDING), contact("1", SHARED)],
            False,
            ALL,
            {("2", SHARED): S.PENDING, ("1", SHARED): S.CONFLICT},
        ),
        (
            [contact("1", SHARED), contact("9", SHARED, position=1, admin_enabled=True)],
            False,
            ALL,
            {("1", SHARED): S.CONFLICT, ("9", SHARED): S.NOT_INVITED},
        ),
        (
            [contact("1", SHARED, status=S.DISABLED), contact("2", SHARED)],
            False,
            ALL,
            {("1", SHARED): S.DISABLED, ("2", SHARED): S.NOT_INVITED},
        ),
        (
            [contact("1", SHARED, status=S.CONFLICT), contact("2", SHARED, status=S.DISABLED)],
            False,
            ALL,
            {("1", SHARED): S.NOT_INVITED, ("2", SHARED): S.DISABLED},
        ),
        (
            [contact("1", SHARED, status=S.CONFLICT), contact("2", SHARED, status=S.ENABLED)],
            True,
            ALL,
            {("1", SHARED): S.NOT_INVITED, ("2", SHARED): S.ENABLED},
        ),
        (
            [contact("1", SHARED, status=S.ENABLED), contact("2", SHARED)],
            False,
            frozenset({"2"}),
            {("1", SHARED): S.ENABLED, ("2", SHARED): S.NOT_INVITED},
        ),
        (
            [contact("1", SHARED), contact("2", SHARED, position=1)],
            False,
            ALL,
            {("1", SHARED): S.NOT_INVITED, ("2", SHARED): S.NOT_INVITED},
        ),
        (
            [contact("1", "bad address"), contact("2", "bad address")],
            False,
            ALL,
            {("1", "bad address"): S.NOT_INVITED, ("2", "bad address"): S.NOT_INVITED},
        ),
        (
            [contact("B", SHARED), contact("A", SHARED), contact("10", SHARED)],
            False,
            ALL,
            {("B", SHARED): S.CONFLICT, ("A", SHARED): S.CONFLICT, ("10", SHARED): S.NOT_INVITED},
        ),
        (
            [contact("1", "AP@Shared.Example "), contact("2", SHARED)],
            False,
            ALL,
            {("1", SHARED): S.NOT_INVITED, ("2", SHARED): S.CONFLICT},
        ),
        (
            [contact("1", SHARED, status=S.ENABLED), contact("2", SHARED, status=S.ENABLED)],
            False,
            ALL,
            {("1", SHARED): S.ENABLED, ("2", SHARED): S.CONFLICT},
        ),
    ],
    ids=[
        "multi-account-no-conflict",
        "single-account-lowest-ref-numerically-keeps-access",
        "single-account-enabled-one-keeps-access",
        "single-account-pending-one-keeps-access",
        "single-account-admin-enabled-beats-lower-ref",
        "disabled-stays-disabled-and-does-not-compete",
        "conflict-released-when-the-other-is-disabled",
        "conflict-released-when-switching-to-multi-account",
        "hidden-customer-does-not-compete",
        "secondary-not-enabled-does-not-compete",
        "invalid-email-is-nobodys-login",
        "numeric-refs-before-text-refs",
        "emails-compared-case-insensitively",
        "switching-to-single-account-keeps-the-lowest-enabled",
    ],
)
def test_resolve_conflicts(contacts, multi: bool, visible, expected) -> None:
    assert resolve_conflicts(contacts, multi_account_portal=multi, visible_customers=visible) == expected


def test_unshared_emails_are_untouched_in_single_account_mode() -> None:
    contacts = [
        contact("1", "a@example.com", status=S.ENABLED),
        contact("2", "b@example.com", status=S.PENDING),
    ]
    statuses = resolve_conflicts(contacts, multi_account_portal=False, visible_customers=ALL)
    assert statuses == {("1", "a@example.com"): S.ENABLED, ("2", "b@example.com"): S.PENDING}


@pytest.mark.parametrize(
    ("refs", "ordered"),
    [
        (["10", "9", "2"], ["2", "9", "10"]),
        (["b", "10", "a"], ["10", "a", "b"]),
        (["²", "1"], ["1", "²"]),
    ],
    ids=["numeric-by-value", "numeric-before-text", "unicode-digit-is-text"],
)
def test_ref_order(refs: list[str], ordered: list[str]) -> None:
    assert sorted(refs, key=ref_order) == ordered
