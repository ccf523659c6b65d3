"""Invitations in the store: issue (superseding earlier ones), accept, and the contact status.

The plaintext token exists only in the returned `IssuedInvitation` (for the mail); the
table keeps its hash. Everything happens on the caller's connection, in its transaction,
so the mail can be enqueued atomically with the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from portal_rules.eligibility import eligible_under, still_portal_visible
from portal_rules.invitations import (
    Accepted,
    InvitationRecord,
    IssuedInvitation,
    Rejected,
    accept_targets,
    check_acceptance,
    issue,
)
from portal_rules.tokens import hash_token
from portal_rules.types import CompanyPolicy, CustomerFacts, PortalAccount, PortalStatus
from store.tables import Contact, Customer, Invitation, Outbox

CONTACTS = Contact.__table__
CUSTOMERS = Customer.__table__
INVITATIONS = Invitation.__table__
OUTBOX = Outbox.__table__


def load_accounts(
    connection: Connection,
    company_id: str,
    *,
    email: str | None = None,
    customer_ref: str | None = None,
    policy: CompanyPolicy | None = None,
) -> list[PortalAccount]:
    """The company's portal accounts (contacts of portal-visible customers), optionally filtered.

    With `policy` (the company's settings now), eligibility and the customers shown are judged
    against it too (`portal_rules.eligibility.eligible_under`): settings changed since the
    last sync (a plan without the portal, inactive customers no longer imported) apply to
    invitations, acceptance and login at once, not at the next sync. Every path that invites,
    accepts or lists the accounts a login reaches reads them here. It only reads.
    """
    query = (
        select(
            CONTACTS.c.customer_ref,
            CONTACTS.c.email,
            CONTACTS.c.portal_status,
            CONTACTS.c.eligible,
            CUSTOMERS.c.active,
            CUSTOMERS.c.deleted,
        )
        .join(
            CUSTOMERS,
            (CUSTOMERS.c.company_id == CONTACTS.c.company_id) & (CUSTOMERS.c.ref == CONTACTS.c.customer_ref),
        )
        .where(
            CONTACTS.c.company_id == company_id,
            CONTACTS.c.in_source.is_(True),
            CUSTOMERS.c.portal_visible.is_(True),
        )
        .order_by(CONTACTS.c.customer_ref, CONTACTS.c.position)
    )
    if email is not None:
        query = query.where(CONTACTS.c.email == email.strip().lower())
    if customer_ref is not None:
        query = query.where(CONTACTS.c.customer_ref == customer_ref)
    accounts = []
    for r in connection.execute(query):
        eligible = bool(r.eligible)
        if policy is not None:
            customer = CustomerFacts(r.customer_ref, bool(r.active), bool(r.deleted))
            if not still_portal_visible(customer, policy):
                continue  # as the next sync will leave it: no portal account at all
            eligible = eligible_under(policy, stored_eligible=eligible, customer=customer)
        accounts.append(PortalAccount(r.customer_ref, r.email, r.portal_status, eligible))
    return accounts


def set_status(
    connection: Connection,
    company_id: str,
    key: tuple[str, str],
    status: PortalStatus,
    *,
    was: PortalStatus | str | None = None,
) -> bool:
    """Set a contact's portal status; with `was`, only while it still is `was` (compared and
    set in one UPDATE: on PostgreSQL it waits for a concurrent change of the row and looks
    again). Whether the contact's row was set."""
    customer_ref, email = key
    where = [
        CONTACTS.c.company_id == company_id,
        CONTACTS.c.customer_ref == customer_ref,
        CONTACTS.c.email == email,
    ]
    if was is not None:
        where.append(CONTACTS.c.portal_status == str(was))
    return connection.execute(update(CONTACTS).where(*where).values(portal_status=str(status))).rowcount == 1


def issue_invitation(
    connection: Connection,
    company_id: str,
    account: PortalAccount,
    *,
    policy: CompanyPolicy,
    portal_url: str,
    now: datetime,
) -> IssuedInvitation | None:
    """A new invitation for `account`; earlier open ones of the contact are superseded. None
    (nothing written) when the contact's status is no longer the one `account` was read with."""
    issued = issue(account, portal_url=portal_url, now=now, ttl_days=policy.invitation_ttl_days)
    return issued if record_invitation(connection, company_id, issued, was=account.status, now=now) else None


def record_invitation(
    connection: Connection, company_id: str, issued: IssuedInvitation, *, was: PortalStatus, now: datetime
) -> bool:
    """Store an invitation issued beforehand (`portal_rules.invitations.issue`): earlier open
    ones of the contact are superseded, and its status follows. Issuing (and rendering its
    mail) can so happen before the write transaction that records it.

    Only while the contact's status is still `was`, the one the decision to invite was made
    on: an admin may have disabled the contact since, the contact accepted its earlier
    invitation, or another process invited it. Then nothing is written and False is
    returned (`set_status` with `was`)."""
    record = issued.record
    if not set_status(connection, company_id, record.key, issued.new_status, was=was):
        return False
    open_ = (
        INVITATIONS.c.company_id == company_id,
        INVITATIONS.c.customer_ref == record.customer_ref,
        INVITATIONS.c.email == record.email,
        INVITATIONS.c.accepted_at.is_(None),
        INVITATIONS.c.superseded_at.is_(None),
    )
    superseded = list(connection.scalars(select(INVITATIONS.c.token_hash).where(*open_)))
    connection.execute(update(INVITATIONS).where(*open_).values(superseded_at=now))
    _drop_unsent_mail(connection, company_id, superseded)
    connection.execute(
        INVITATIONS.insert().values(
            company_id=company_id,
            customer_ref=record.customer_ref,
            email=record.email,
            token_hash=record.token_hash,
            created_at=record.created_at,
            expires_at=record.expires_at,
        )
    )
    return True


def _drop_unsent_mail(connection: Connection, company_id: str, token_hashes: list[str]) -> None:
    """A superseded invitation still waiting in the outbox (say, for its window) must not go out:
    its link could only fail. The mail's dedupe key names the invitation it carries."""
    if token_hashes:
        connection.execute(
            update(OUTBOX)
            .where(
                OUTBOX.c.company_id == company_id,
                OUTBOX.c.status == "queued",
                OUTBOX.c.dedupe_key.in_([f"invitation:{h}" for h in token_hashes]),
            )
            .values(status="dropped", last_error="superseded by a newer invitation")
        )


def accept(
    connection: Connection, company_id: str, token: str, *, policy: CompanyPolicy, now: datetime
) -> Accepted | Rejected:
    """Accept `token` for `company_id`: the contact (and, multi-account, its email's siblings) enabled.

    The contact must be eligible under `policy`, the company's settings now (`load_accounts`):
    a company switched to a plan without the portal, or a customer no longer shown, refuses
    the token from then on, not only after the next sync has decided the contact again."""
    invited = _invited(connection, company_id, token, policy)
    outcome = check_acceptance(
        invited.record if invited else None,
        token,
        now=now,
        contact_status=invited.status if invited else PortalStatus.NOT_INVITED,
        contact_eligible=invited is not None and invited.eligible,
    )
    if isinstance(outcome, Rejected):
        return outcome
    if invited is None or not _enable(connection, company_id, invited, now):  # (None: rejected above)
        return Rejected()
    siblings = load_accounts(connection, company_id, email=invited.record.email, policy=policy)
    for key in accept_targets(outcome, siblings, policy.multi_account_portal):
        set_status(connection, company_id, key, PortalStatus.ENABLED)
    return outcome


@dataclass(frozen=True, slots=True)
class _Invited:
    """An invitation found by its token, with its contact as read: status, and eligibility
    under the company's settings now."""

    id: int
    record: InvitationRecord
    status: PortalStatus | str
    eligible: bool


def _invited(connection: Connection, company_id: str, token: str, policy: CompanyPolicy) -> _Invited | None:
    row = (
        connection.execute(
            select(INVITATIONS).where(
                INVITATIONS.c.company_id == company_id, INVITATIONS.c.token_hash == hash_token(token)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    record = InvitationRecord(
        row["customer_ref"],
        row["email"],
        row["token_hash"],
        row["created_at"],
        row["expires_at"],
        row["accepted_at"],
        row["superseded_at"],
    )
    status = (
        connection.scalar(
            select(CONTACTS.c.portal_status).where(
                CONTACTS.c.company_id == company_id,
                CONTACTS.c.customer_ref == record.customer_ref,
                CONTACTS.c.email == record.email,
            )
        )
        or PortalStatus.NOT_INVITED
    )
    accounts = load_accounts(
        connection, company_id, email=record.email, customer_ref=record.customer_ref, policy=policy
    )
    return _Invited(row["id"], record, status, any(account.eligible for account in accounts))


def _enable(connection: Connection, company_id: str, invited: _Invited, now: datetime) -> bool:
    """Enable the invited contact and mark its invitation accepted, each only as it was read;
    False (nothing changed) when a sync or another acceptance got there first."""
    # Only if the contact still holds the status read: a sync deciding its email meanwhile
    # (another customer's contact keeps it, `conflict`) is not overwritten with `enabled`,
    # which could leave two logins on one email; the token is then refused, nothing changed.
    key = invited.record.key
    if not set_status(connection, company_id, key, PortalStatus.ENABLED, was=invited.status):
        return False
    # Only if nobody accepted (or superseded) it since it was read: of requests racing with
    # one token, one enables the contact and the others are told it is invalid.
    taken = connection.execute(
        update(INVITATIONS)
        .where(
            INVITATIONS.c.id == invited.id,
            INVITATIONS.c.accepted_at.is_(None),
            INVITATIONS.c.superseded_at.is_(None),
        )
        .values(accepted_at=now)
    ).rowcount
    if taken != 1:  # the contact as it was
        set_status(connection, company_id, key, invited.status)
        return False
    return True
