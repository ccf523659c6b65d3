from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from portal_rules.invitations import (
    INVALID_TOKEN,
    Accepted,
    InvitationRecord,
    Rejected,
    accept_targets,
    can_invite,
    check_acceptance,
    issue,
    needs_auto_invitation,
)
from portal_rules.status import InvalidTransition
from portal_rules.tokens import hash_token, invitation_link, new_token, tokens_match
from portal_rules.types import CompanyPolicy, PortalStatus

from .factories import account, utc

S = PortalStatus
NOW = utc("2026-06-01T12:00:00")


def test_tokens_are_random_url_safe_and_at_least_32_bytes() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)  # 43 base64url chars = 32 bytes


def test_only_a_sha256_hash_is_kept_and_compared() -> None:
    token = new_token()
    digest = hash_token(token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert token not in digest
    assert tokens_match(digest, hash_token(token))
    assert not tokens_match(digest, hash_token(new_token()))


@pytest.mark.parametrize(
    ("portal_url", "expected"),
    [
        ("https://portal.acme.example", "https://portal.acme.example/invite/T0K"),
        ("https://portal.acme.example/", "https://portal.acme.example/invite/T0K"),
        ("https://acme.example/portal/", "https://acme.example/portal/invite/T0K"),
    ],
    ids=["bare", "trailing-slash", "with-path"],
)
def test_invitation_link(portal_url: str, expected: str) -> None:
    assert invitation_link(portal_url, "T0K") == expected


def test_issue_makes_a_pending_invitation_that_stores_only_the_hash() -> None:
    issued = issue(account("7", "ann@example.com"), portal_url="https://p.example/", now=NOW, ttl_days=14)
    assert issued.new_status is S.PENDING
    assert issued.link == f"https://p.example/invite/{issued.token}"
    assert issued.record == InvitationRecord(
        customer_ref="7",
        email="ann@example.com",
        token_hash=hash_token(issued.token),
        created_at=NOW,
        expires_at=NOW + timedelta(days=14),
    )


@pytest.mark.parametrize(
    ("target", "error"),
    [
        (account(status=S.ENABLED), "already accepted"),
        (account(status=S.DISABLED), "disabled"),
        (account(status=S.CONFLICT), "another customer"),
        (account(eligible=False), "not eligible"),
    ],
    ids=["enabled", "disabled", "conflict", "ineligible"],
)
def test_issue_refuses(target, error: str) -> None:
    with pytest.raises(InvalidTransition, match=error):
        issue(target, portal_url="https://p.example", now=NOW, ttl_days=14)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (account(status=S.NOT_INVITED), True),
        (account(status=S.PENDING), True),
        (account(status=S.ENABLED), False),
        (account(status=S.NOT_INVITED, eligible=False), False),
    ],
    ids=["not-invited", "pending-resend", "already-enabled", "ineligible"],
)
def test_can_invite(target, expected: bool) -> None:
    assert can_invite(target) is expected


@pytest.mark.parametrize(
    ("auto_invite", "target", "expected"),
    [
        (True, account(status=S.NOT_INVITED), True),
        (False, account(status=S.NOT_INVITED), False),
        (True, account(status=S.PENDING), False),
        (True, account(eligible=False), False),
    ],
    ids=["auto-new-contact", "auto-invite-off", "already-pending", "ineligible"],
)
def test_needs_auto_invitation(auto_invite: bool, target, expected: bool) -> None:
    policy = CompanyPolicy(plan="pro", timezone="UTC", auto_invite=auto_invite)
    assert needs_auto_invitation(policy, target) is expected


TOKEN = "the-presented-token"
VALID = InvitationRecord(
    customer_ref="7",
    email="ann@example.com",
    token_hash=hash_token(TOKEN),
    created_at=NOW,
    expires_at=NOW + timedelta(days=14),
)


@pytest.mark.parametrize(
    ("record", "token", "now", "contact_status", "contact_eligible", "accepted"),
    [
        (VALID, TOKEN, NOW + timedelta(days=1), S.PENDING, True, True),
        (VALID, TOKEN, NOW + timedelta(days=14, seconds=-1), S.PENDING, True, True),
        (None, TOKEN, NOW, S.PENDING, True, False),
        (VALID, "some-other-token", NOW, S.PENDING, True, False),
        (replace(VALID, superseded_at=NOW), TOKEN, NOW, S.PENDING, True, False),
        (VALID, TOKEN, NOW + timedelta(days=14), S.PENDING, True, False),
        (replace(VALID, accepted_at=NOW), TOKEN, NOW, S.ENABLED, True, False),
        (VALID, TOKEN, NOW, S.ENABLED, True, False),
        (VALID, TOKEN, NOW, S.DISABLED, True, False),
        (VALID, TOKEN, NOW, S.CONFLICT, True, False),
        (VALID, TOKEN, NOW, S.PENDING, False, False),
    ],
    ids=[
        "valid",
        "last-second-before-expiry",
        "unknown-token",
        "hash-mismatch",
        "superseded-by-a-later-invitation",
        "expired",
        "accepted-twice",
        "contact-already-enabled",
        "contact-disabled-since",
        "contact-in-conflict-since",
        "contact-no-longer-eligible",  # the plan has no portal, the customer is no longer shown
    ],
)
def test_check_acceptance(
    record, token: str, now, contact_status, contact_eligible: bool, accepted: bool
) -> None:
    outcome = check_acceptance(
        record, token, now=now, contact_status=contact_status, contact_eligible=contact_eligible
    )
    if accepted:
        assert outcome == Accepted(key=("7", "ann@example.com"), accepted_at=now)
        assert outcome.new_status is S.ENABLED
    else:
        assert outcome == Rejected()
        assert outcome.reason == INVALID_TOKEN == "invalid invitation token"


def test_resending_supersedes_the_first_link() -> None:
    first = issue(account(status=S.NOT_INVITED), portal_url="https://p", now=NOW, ttl_days=14)
    later = NOW + timedelta(hours=1)
    second = issue(account(status=first.new_status), portal_url="https://p", now=later, ttl_days=14)
    # The caller marks earlier invitations of the same contact superseded when storing the second.
    old = replace(first.record, superseded_at=second.record.created_at)
    assert (
        check_acceptance(old, first.token, now=later, contact_status=S.PENDING, contact_eligible=True)
        == Rejected()
    )
    assert isinstance(
        check_acceptance(
            second.record, second.token, now=later, contact_status=S.PENDING, contact_eligible=True
        ),
        Accepted,
    )


SHARED = "ap@shared.example"
FOR_EMAIL = [
    account("1", SHARED, S.PENDING),
    account("2", SHARED, S.NOT_INVITED),
    account("3", SHARED, S.ENABLED),
    account("4", SHARED, S.NOT_INVITED, eligible=False),
    account("5", SHARED, S.DISABLED, eligible=False),
]


@pytest.mark.parametrize(
    ("multi", "expected"),
    [(True, (("1", SHARED), ("2", SHARED))), (False, (("1", SHARED),))],
    ids=["multi-account-enables-every-eligible-account", "single-account-enables-the-invited-one"],
)
def test_accept_targets(multi: bool, expected) -> None:
    accepted = Accepted(key=("1", SHARED), accepted_at=NOW)
    assert accept_targets(accepted, FOR_EMAIL, multi) == expected
