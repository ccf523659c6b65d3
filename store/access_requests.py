"""The portal's "request access" (SPEC section 2): record each request with its decision, then
issue the invitation it decided on and put its mail in the outbox.

`request_access` does both at once (the CLI); the HTTP API only records (`record_access_request`)
so its answer takes no longer for a matched email, and a worker issues what was decided
(`requested_invites`, `invite_on_request`). `store.portal` offers `request_access` to portal
services with the rest of its API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, func, insert, literal, outerjoin, select, update

from portal_rules.invitations import can_invite
from portal_rules.request_access import (
    PUBLIC_ANSWER,
    OpenInvitation,
    already_answered,
    decide_request_access,
)
from portal_rules.types import CompanyPolicy
from store import invitations, jobs
from store.portal_customers import customer_names
from store.tables import PENDING, AccessRequest, Invitation, Outbox

Enqueue = Callable[..., None]  # enqueue(connection, issued: IssuedInvitation, display_name: str)


def request_access(
    engine: Engine,
    company_id: str,
    email: str,
    *,
    policy: CompanyPolicy,
    portal_url: str,
    now: datetime,
    enqueue: Enqueue,
) -> str:
    """The portal's "request access": invite a matching eligible contact at once.

    The answer is the same whatever happened (no account enumeration); every request is
    recorded so the per-email rate limit holds for unknown emails too. A caller that must
    not take longer for a matched email (the HTTP API) calls only `record_access_request`:
    a worker issues the invitation it decided on (`requested_invites`, `invite_on_request`).
    """
    request = record_access_request(engine, company_id, email, now=now, policy=policy)
    if request is not None:
        invite_on_request(
            engine, company_id, request, policy=policy, portal_url=portal_url, now=now, enqueue=enqueue
        )
    return PUBLIC_ANSWER


@dataclass(frozen=True, slots=True)
class RequestedInvite:
    """An invitation a request decided on, not yet issued: the contact's customer and email."""

    request_id: int
    customer_ref: str
    email: str


def record_access_request(
    engine: Engine, company_id: str, email: str, *, now: datetime, policy: CompanyPolicy | None = None
) -> RequestedInvite | None:
    """Record one request of `email` (counted by the per-email limit, matched or not) with
    its decision: the eligible contact to invite, or None. The same reads and writes
    whatever the email; the invitation stays to issue until `invite_on_request` (or a worker)
    issues it. Every request makes the workers' `REQUESTED` job due at once, which issues and
    sends what was decided: "at once" (SPEC §2), within a second with a running worker.
    `policy`, the company's settings now, judges eligibility with them (`load_accounts`)."""
    normalized = email.strip().lower()
    with engine.begin() as connection:
        # One request of an email at a time, so the earlier ones are all counted: on
        # PostgreSQL a lock on the (company, email) pair; on SQLite the INSERT, first in
        # its transaction, takes the store's write lock (SQLite reads before a write outside
        # any transaction, so counting first let concurrent requests all see too few).
        if connection.dialect.name == "postgresql":
            pair = func.hashtextextended(f"{company_id} {normalized}", 0)
            connection.execute(select(func.pg_advisory_xact_lock(pair)))
        this = connection.execute(
            insert(AccessRequest).values(
                company_id=company_id,
                email=normalized,
                requested_at=now,
                newest_invitation_id=func.coalesce(select(func.max(Invitation.id)).scalar_subquery(), 0),
            )
        ).inserted_primary_key[0]
        recent = list(
            connection.scalars(
                select(AccessRequest.requested_at).where(
                    AccessRequest.company_id == company_id,
                    AccessRequest.email == normalized,
                    AccessRequest.id != this,
                )
            )
        )
        accounts = invitations.load_accounts(connection, company_id, email=normalized, policy=policy)
        invite = decide_request_access(accounts, recent, now).invite
        connection.execute(  # the decision, written alike whatever it is
            update(AccessRequest)
            .where(AccessRequest.id == this)
            .values(
                invite_ref=invite.customer_ref if invite else None,
                handled_at=None if invite else now,
            )
        )
        jobs.bring_forward(connection, jobs.REQUESTED)
    return RequestedInvite(this, invite.customer_ref, invite.email) if invite is not None else None


def invite_on_request(
    engine: Engine,
    company_id: str,
    request: RequestedInvite,
    *,
    policy: CompanyPolicy,
    portal_url: str,
    now: datetime,
    enqueue: Enqueue,
) -> bool:
    """Issue the invitation a request decided on and put its mail in the outbox, with the
    request marked handled in the same transaction; False when it already was (by a worker
    or another process), the contact can no longer be invited, or an open invitation answers
    it (`already_answered`: an admin's `arsync invite` since, an earlier request of the same
    email a moment before): a second one would supersede its link and mail again."""
    with engine.begin() as connection:
        taken = connection.execute(
            update(AccessRequest)
            .where(AccessRequest.id == request.request_id, AccessRequest.handled_at.is_(None))
            .values(handled_at=now)
        ).rowcount
        if not taken:
            return False
        accounts = invitations.load_accounts(connection, company_id, email=request.email, policy=policy)
        account = next((a for a in accounts if a.customer_ref == request.customer_ref), None)
        if account is None or not can_invite(account):
            return False  # enabled, or no longer eligible, since the request
        if _answered(connection, company_id, request, now):
            return False
        issued = invitations.issue_invitation(
            connection, company_id, account, policy=policy, portal_url=portal_url, now=now
        )
        if issued is None:
            return False  # its status changed since it was read
        name = customer_names(connection, company_id, [account.customer_ref]).get(account.customer_ref, "")
        enqueue(connection, issued, name)
    return True


def _answered(connection: Connection, company_id: str, request: RequestedInvite, now: datetime) -> bool:
    requested_at, newest_id_then = connection.execute(
        select(AccessRequest.requested_at, AccessRequest.newest_invitation_id).where(
            AccessRequest.id == request.request_id
        )
    ).one()
    mail = outerjoin(
        Invitation,
        Outbox,
        and_(
            Outbox.company_id == Invitation.company_id,
            Outbox.dedupe_key == literal("invitation:") + Invitation.token_hash,
        ),
    )
    open_ = (
        select(Invitation.id, Invitation.created_at, Outbox.status, Outbox.automatic)
        .select_from(mail)
        .where(
            Invitation.company_id == company_id,
            Invitation.customer_ref == request.customer_ref,
            Invitation.email == request.email,
            Invitation.accepted_at.is_(None),
            Invitation.superseded_at.is_(None),
            Invitation.expires_at > now,
        )
    )
    return already_answered(
        (
            OpenInvitation(id_, created, status, bool(automatic))
            for id_, created, status, automatic in connection.execute(open_)
        ),
        requested_at=requested_at,
        newest_id_then=newest_id_then,
    )


def companies_with_requested_invites(engine: Engine) -> set[str]:
    """The companies with requested invitations nobody has issued yet (one read of the
    partial index, so a fleet's dispatch does not ask each of its companies every minute)."""
    query = select(AccessRequest.company_id).where(PENDING).distinct()
    with engine.connect() as connection:
        return set(connection.scalars(query))


def requested_invites(engine: Engine, company_id: str) -> list[RequestedInvite]:
    """The invitations requests decided on that nobody has issued yet, oldest first."""
    query = (
        select(AccessRequest.id, AccessRequest.invite_ref, AccessRequest.email)
        .where(AccessRequest.company_id == company_id, PENDING)
        .order_by(AccessRequest.id)
    )
    with engine.connect() as connection:
        return [RequestedInvite(*row) for row in connection.execute(query)]
