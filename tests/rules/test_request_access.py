from __future__ import annotations

from datetime import timedelta

import pytest

from portal_rules.request_access import (
    PUBLIC_ANSWER,
    OpenInvitation,
    already_answered,
    decide_request_access,
    is_rate_limited,
)
from portal_rules.types import PortalStatus

from .factories import account, utc

S = PortalStatus
NOW = utc("2026-06-01T12:00:00")
EMAIL = "ann@example.com"


def _ago(*minutes: int) -> list:
    return [NOW - timedelta(minutes=m) for m in minutes]


@pytest.mark.parametrize(
    ("accounts", "recent", "invite_ref", "rate_limited"),
    [
        ([account("1", EMAIL, S.NOT_INVITED)], [], "1", False),
        ([account("1", EMAIL, S.PENDING)], [], "1", False),
        ([account("1", EMAIL, S.ENABLED)], [], None, False),
        ([account("1", EMAIL, S.NOT_INVITED, eligible=False)], [], None, False),
        ([account("1", EMAIL, S.DISABLED, eligible=False)], [], None, False),
        ([], [], None, False),
        (
            [account("10", EMAIL, S.NOT_INVITED), account("9", EMAIL, S.NOT_INVITED)],
            [],
            "9",
            False,
        ),
        (
            [account("1", EMAIL, S.NOT_INVITED), account("2", EMAIL, S.PENDING)],
            [],
            "2",
            False,
        ),
        (
            [account("1", EMAIL, S.ENABLED), account("2", EMAIL, S.NOT_INVITED)],
            [],
            "2",
            False,
        ),
        ([account("1", EMAIL, S.NOT_INVITED)], _ago(5, 20), "1", False),
        ([account("1", EMAIL, S.NOT_INVITED)], _ago(5, 20, 59), None, True),
        ([], _ago(5, 20, 59), None, True),
        ([account("1", EMAIL, S.NOT_INVITED)], _ago(5, 20, 60, 90), "1", False),
    ],
    ids=[
        "eligible-not-invited-gets-invitation",
        "pending-gets-a-fresh-invitation",
        "already-enabled-nothing-to-send",
        "ineligible-nothing-sent",
        "disabled-nothing-sent",
        "unknown-email-nothing-sent",
        "lowest-ref-numerically-invited",
        "pending-preferred-over-new",
        "another-account-of-the-email-not-yet-enabled",
        "two-recent-requests-still-allowed",
        "fourth-request-within-an-hour-limited",
        "unknown-email-limited-alike",
        "requests-older-than-an-hour-do-not-count",
    ],
)
def test_decide_request_access(accounts, recent, invite_ref: str | None, rate_limited: bool) -> None:
    decision = decide_request_access(accounts, recent, NOW)
    assert (decision.invite.customer_ref if decision.invite else None) == invite_ref
    assert decision.rate_limited is rate_limited


def test_public_answer_is_identical_whether_or_not_the_email_matched() -> None:
    matched = decide_request_access([account("1", EMAIL)], [], NOW)
    unknown = decide_request_access([], [], NOW)
    limited = decide_request_access([account("1", EMAIL)], _ago(1, 2, 3), NOW)
    assert matched.invite is not None and unknown.invite is None and limited.rate_limited
    answers = {matched.public_answer, unknown.public_answer, limited.public_answer}
    assert answers == {PUBLIC_ANSWER}
    assert EMAIL not in PUBLIC_ANSWER


@pytest.mark.parametrize(
    ("recent", "limit", "period", "expected"),
    [
        (_ago(1, 2), 3, timedelta(hours=1), False),
        (_ago(1, 2, 3), 3, timedelta(hours=1), True),
        (_ago(1), 1, timedelta(minutes=5), True),
        (_ago(6), 1, timedelta(minutes=5), False),
        ([NOW + timedelta(minutes=1)] * 5, 3, timedelta(hours=1), True),  # decided after a later-stamped one
        ([NOW + timedelta(hours=2)] * 5, 3, timedelta(hours=1), False),
    ],
    ids=[
        "under-limit",
        "at-limit",
        "custom-limit",
        "custom-period-expired",
        "racing-requests-count",
        "far-future-ignored",
    ],
)
def test_is_rate_limited(recent, limit: int, period: timedelta, expected: bool) -> None:
    assert is_rate_limited(recent, NOW, limit=limit, period=period) is expected


@pytest.mark.parametrize(
    ("invitations", "answered"),
    [
        ([], False),
        ([OpenInvitation(8, NOW - timedelta(days=3))], False),  # an old invitation: resend
        ([OpenInvitation(12, NOW - timedelta(days=3))], True),  # issued after the request
        ([OpenInvitation(8, NOW - timedelta(minutes=4))], True),  # its mail is on its way
        ([OpenInvitation(8, NOW - timedelta(minutes=5))], False),
        # the admin's machine is 10 minutes behind the server's: issued since, by id
        ([OpenInvitation(12, NOW - timedelta(minutes=9))], True),
        ([OpenInvitation(10, NOW + timedelta(minutes=2))], True),  # just before, clock ahead
        ([OpenInvitation(10, NOW - timedelta(days=1)), OpenInvitation(11, NOW)], True),
        # its mail never left, or waits for the window: the request mails at once
        ([OpenInvitation(12, NOW, mail_status="failed")], False),
        ([OpenInvitation(12, NOW, mail_status="in_doubt")], False),
        ([OpenInvitation(12, NOW, mail_status="dropped")], False),
        ([OpenInvitation(12, NOW, mail_status=None)], False),
        ([OpenInvitation(12, NOW, mail_status="queued", mail_automatic=True)], False),
        ([OpenInvitation(12, NOW, mail_status="queued")], True),
        ([OpenInvitation(12, NOW, mail_status="sending")], True),
    ],
    ids=[
        "none-open",
        "old-invitation",
        "issued-since",
        "issued-4-min-before",
        "issued-5-min-before",
        "issued-since-clock-behind",
        "issued-just-before-clock-ahead",
        "one-of-several",
        "mail-refused",
        "mail-in-doubt",
        "mail-dropped",
        "no-mail",
        "mail-held-for-the-window",
        "mail-queued-to-go-now",
        "mail-being-sent",
    ],
)
def test_an_open_invitation_answers_a_request(invitations, answered):
    old_newest = 10
    assert already_answered(invitations, requested_at=NOW, newest_id_then=old_newest) is answered


@pytest.mark.parametrize(
    ("created", "answered"),
    [(NOW - timedelta(days=3), False), (NOW + timedelta(seconds=1), True)],
    ids=["older-resend", "issued-since"],
)
def test_a_request_recorded_without_the_newest_id_falls_back_to_time(created, answered):
    """An earlier release's server, still running after the upgrade, records no id."""
    invitation = OpenInvitation(3, created)
    assert (
        already_answered([invitation], requested_at=NOW, newest_id_then=None, window=timedelta(0)) is answered
    )
