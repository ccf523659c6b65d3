"""Portal invitations: issuing one, and accepting a token.

Issuing creates a random token, keeps only its hash, and supersedes every earlier
invitation of the same contact. Accepting an unknown, superseded, expired or already
accepted token, or one whose contact is no longer eligible, fails with exactly "invalid
invitation token" and changes nothing; a valid one sets the contact `enabled`. With a
multi-account portal, accepting also enables the email's other eligible contacts: the email
is proven, and one login reaches all its customers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal_rules.status import InvalidTransition, PortalEvent, next_status
from portal_rules.tokens import hash_token, invitation_link, new_token, tokens_match
from portal_rules.types import CompanyPolicy, ContactKey, PortalAccount, PortalStatus

INVALID_TOKEN = "invalid invitation token"
_INVITABLE = frozenset({PortalStatus.NOT_INVITED, PortalStatus.PENDING})


@dataclass(frozen=True, slots=True)
class InvitationRecord:
    """An invitation as the store keeps it (never the token, only its hash)."""

    customer_ref: str
    email: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    superseded_at: datetime | None = None

    @property
    def key(self) -> ContactKey:
        return (self.customer_ref, self.email)


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    """A new invitation. The caller, in one transaction: sets `superseded_at = created_at`
    on every earlier open invitation of `record.key`, stores `record`, sets the contact's
    status to `new_status`, and enqueues the mail carrying `link`. `token` is never stored.
    """

    record: InvitationRecord
    token: str
    link: str
    new_status: PortalStatus


@dataclass(frozen=True, slots=True)
class Accepted:
    key: ContactKey
    accepted_at: datetime
    new_status: PortalStatus = PortalStatus.ENABLED


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str = INVALID_TOKEN


def can_invite(account: PortalAccount) -> bool:
    """An eligible contact not yet enabled may be (re)invited."""
    return account.eligible and account.status in _INVITABLE


def needs_auto_invitation(policy: CompanyPolicy, account: PortalAccount) -> bool:
    """With `auto_invite`, eligible contacts never invited get an (automatic) invitation."""
    return policy.auto_invite and account.eligible and account.status is PortalStatus.NOT_INVITED


def issue(account: PortalAccount, *, portal_url: str, now: datetime, ttl_days: int) -> IssuedInvitation:
    """A new invitation for `account`; `InvalidTransition` says why one cannot be sent."""
    if not account.eligible:
        raise InvalidTransition("the contact is not eligible for the portal")
    new_status = next_status(account.status, PortalEvent.SEND)
    token = new_token()
    record = InvitationRecord(
        customer_ref=account.customer_ref,
        email=account.email,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + timedelta(days=ttl_days),
    )
    return IssuedInvitation(record, token, invitation_link(portal_url, token), new_status)


def check_acceptance(
    record: InvitationRecord | None,
    token: str,
    *,
    now: datetime,
    contact_status: PortalStatus | str,
    contact_eligible: bool,
) -> Accepted | Rejected:
    """Whether `token` accepts `record` (looked up by `hash_token(token)`, None if unknown).

    Every failure gives the same `Rejected()`, so the answer reveals nothing about why.
    `contact_status` must still be `pending`: an invitation to a contact since disabled,
    put in conflict or already enabled is no longer valid. Nor is one to a contact no longer
    `contact_eligible` (the company's plan, the customer's state): it could not log in.
    """
    if record is None or not tokens_match(record.token_hash, hash_token(token)):
        return Rejected()
    if record.superseded_at is not None or record.accepted_at is not None:
        return Rejected()
    if now >= record.expires_at or PortalStatus(contact_status) is not PortalStatus.PENDING:
        return Rejected()
    if not contact_eligible:
        return Rejected()
    return Accepted(key=record.key, accepted_at=now)


def accept_targets(
    accepted: Accepted, accounts_for_email: Iterable[PortalAccount], multi_account_portal: bool
) -> tuple[ContactKey, ...]:
    """The contacts to set `enabled` on acceptance: the invited one and, with a
    multi-account portal, the email's other eligible contacts not yet enabled.
    """
    targets = [accepted.key]
    if multi_account_portal:
        email = accepted.key[1]
        targets += sorted(
            account.key
            for account in accounts_for_email
            if account.email == email and account.key != accepted.key and can_invite(account)
        )
    return tuple(targets)
