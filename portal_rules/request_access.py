"""Request access: a customer types an email on the portal's sign-in page.

If the email belongs to an eligible contact not yet enabled, an invitation goes out at
once (transactional mail: delivery windows do not apply). The public answer is the same
whether or not the email matched, and whether or not the request was rate-limited, so
the page cannot be used to find out which emails are customers. Requests are limited per
email; the caller records every request (matched or not, limited or not) so the limit
holds for unknown emails too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal_rules.conflicts import ref_order
from portal_rules.invitations import can_invite
from portal_rules.types import PortalAccount, PortalStatus

PUBLIC_ANSWER = (
    "If this email address belongs to a customer account, "
    "an invitation to the customer portal has been sent to it."
)
DEFAULT_LIMIT = 3
DEFAULT_PERIOD = timedelta(hours=1)
# An invitation this recent answers a request of its contact: its mail may not have arrived
# yet, and a new one would supersede the link on its way (a double click, an impatient retry).
REPEAT_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """What to do (never shown to the requester: they always get `PUBLIC_ANSWER`)."""

    invite: PortalAccount | None  # issue an invitation for this contact, now
    rate_limited: bool = False

    @property
    def public_answer(self) -> str:
        return PUBLIC_ANSWER


def is_rate_limited(
    recent_requests: Iterable[datetime],
    now: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    period: timedelta = DEFAULT_PERIOD,
) -> bool:
    """Whether `limit` requests for this email were already made within `period` of `now`.

    A request stamped up to `period` later than `now` counts too: requests arriving together
    are decided one after another, not necessarily in the order of their clocks (or of their
    workers' clocks). One stamped further ahead (`--now` set in the future) does not.
    """
    return sum(1 for moment in recent_requests if abs(now - moment) < period) >= limit


def decide_request_access(
    accounts_for_email: Iterable[PortalAccount],
    recent_requests: Iterable[datetime],
    now: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    period: timedelta = DEFAULT_PERIOD,
) -> AccessDecision:
    """The contact to invite for a request, if any.

    `accounts_for_email` are the company's accounts with the requested email (possibly
    none); `recent_requests` the times of earlier requests for it, this one excluded.
    A pending contact is preferred (a resend), then the lowest customer ref; with a
    multi-account portal, accepting that one invitation enables the others too.
    """
    if is_rate_limited(recent_requests, now, limit=limit, period=period):
        return AccessDecision(invite=None, rate_limited=True)
    candidates = [account for account in accounts_for_email if can_invite(account)]
    if not candidates:
        return AccessDecision(invite=None)
    return AccessDecision(invite=min(candidates, key=_preference))


# the outbox states of a mail that has left or will leave at once (a retry included)
_ON_ITS_WAY = frozenset({"claimed", "sending", "sent"})


@dataclass(frozen=True, slots=True)
class OpenInvitation:
    """An invitation of the contact, neither accepted, superseded nor expired, with the
    outbox state of its mail (None: no mail) and whether that mail waits for the window."""

    id: int
    created_at: datetime
    mail_status: str | None = "sent"
    mail_automatic: bool = False

    @property
    def mail_on_its_way(self) -> bool:
        """Sent, being sent, or queued to go at once: not refused, dropped, in doubt, nor
        held for the delivery window (request-access mail ignores windows)."""
        queued_now = self.mail_status == "queued" and not self.mail_automatic
        return self.mail_status in _ON_ITS_WAY or queued_now


def already_answered(
    open_invitations: Iterable[OpenInvitation],
    *,
    requested_at: datetime,
    newest_id_then: int | None,
    window: timedelta = REPEAT_WINDOW,
) -> bool:
    """Whether an open invitation of the contact answers a request, so issuing another would
    only supersede its link and mail the contact twice: one whose mail is on its way, issued
    after the request (an id above the newest one when it was made: ids, since the HTTP
    server's clock and the admin's may differ; by time for a request recorded without it,
    by an earlier release's server) or less than `window` before it."""

    def since(invitation: OpenInvitation) -> bool:
        if newest_id_then is None:
            return invitation.created_at >= requested_at
        return invitation.id > newest_id_then

    return any(
        invitation.mail_on_its_way and (since(invitation) or invitation.created_at > requested_at - window)
        for invitation in open_invitations
    )


def _preference(account: PortalAccount) -> tuple[int, tuple[int, int, str]]:
    return (0 if account.status is PortalStatus.PENDING else 1, ref_order(account.customer_ref))
