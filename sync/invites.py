"""`arsync invite`, automatic and requested invitations: issue invitations and enqueue their mail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine

from mailer.environment import TemplateProblem, check_templates, template_failure
from portal_rules.eligibility import CONFLICT, DISABLED
from portal_rules.invitations import IssuedInvitation, can_invite, issue, needs_auto_invitation
from portal_rules.types import PortalAccount, PortalStatus
from store.access_requests import invite_on_request, requested_invites
from store.invitations import load_accounts, record_invitation
from store.portal_customers import customer_names
from sync.config import CompanyConfig, Config
from sync.mail import invitation_enqueuer, invitation_key
from sync.settings import company_policy

# Invitations recorded per transaction: about 0.15 s of SQLite's one write lock (2,000
# contacts: the longest hold 0.14 s, against 2.6 s with 500 composed inside the transaction).
BATCH = 100
T = TypeVar("T")


@dataclass
class InviteReport:
    invited: list[tuple[str, str]] = field(default_factory=list)  # (customer_ref, email)
    not_invitable: list[tuple[str, str, str]] = field(default_factory=list)  # (ref, email, why)
    outbox_ids: list[int] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)  # changed meanwhile: left as they are


def invite(
    engine: Engine,
    config: Config,
    company: CompanyConfig,
    *,
    now: datetime,
    customer_ref: str | None = None,
    email: str | None = None,
    all_eligible: bool = False,
    automatic: bool = False,
) -> InviteReport:
    """Invite the chosen contacts: one customer's (or one email of it), or every eligible one.

    `all_eligible` covers the whole company, not one page of it; work is committed in
    batches so a huge company does not hold one long transaction, and each batch's messages
    are composed before it opens. `TemplateProblem` when the company's invitation templates
    cannot be used (nothing of the batch being issued is written).
    """
    check_portal_url(company)
    check_templates(company.template_dir, "invitation")
    policy = company_policy(company)
    post = invitation_enqueuer(config, company, now=now, automatic=automatic)
    report = InviteReport()
    with engine.connect() as connection:
        accounts = load_accounts(
            connection, company.id, customer_ref=None if all_eligible else customer_ref, policy=policy
        )
    if email is not None:
        accounts = [a for a in accounts if a.email == email.strip().lower()]
    wanted = [a for a in accounts if (needs_auto_invitation(policy, a) if automatic else can_invite(a))]
    if not all_eligible and not automatic:
        report.not_invitable = [(a.customer_ref, a.email, _why(a)) for a in accounts if not can_invite(a)]
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        with engine.connect() as connection:
            names = customer_names(connection, company.id, sorted({a.customer_ref for a in chunk}))
        issued = [
            issue(account, portal_url=company.portal_url, now=now, ttl_days=policy.invitation_ttl_days)
            for account in chunk
        ]
        # composed before the write transaction, which then holds the store only for its rows
        messages = [_worded(post.render, one, names.get(one.record.customer_ref, "")) for one in issued]
        with engine.begin() as connection:
            recorded, changed = [], []
            for account, one, message in zip(chunk, issued, messages, strict=True):
                # a contact changed since it was read (disabled, accepted, invited) is left as it is
                if record_invitation(connection, company.id, one, was=account.status, now=now):
                    recorded.append((one, message))
                else:
                    changed.append(account.key)
            ids = post.enqueue(connection, recorded)
        report.invited += [one.record.key for one, _ in recorded]
        report.changed += changed
        report.outbox_ids += [ids[key] for key in (invitation_key(one) for one, _ in recorded) if key in ids]
    return report


def _worded(call: Callable[..., T], *args: object) -> T:
    """`call(*args)`, a template's failure worded as a `TemplateProblem` (its file and line)."""
    try:
        return call(*args)
    except Exception as exc:
        problem = template_failure(exc)
        if problem is None:
            raise
        raise problem from exc


def issue_requested(
    engine: Engine, config: Config, company: CompanyConfig, *, now: datetime, into: list[int] | None = None
) -> int:
    """Issue the invitations portal "request access" calls decided on (the HTTP API only
    records them, see `store.access_requests.record_access_request`); how many were issued, their
    outbox ids added to `into`. Their mail is transactional: sent at once, whatever the
    window. `TemplateProblem` (the company's invitation templates broken): nothing is
    issued, the requests wait for the fix."""
    check_templates(company.template_dir, "invitation")
    check_portal_url(company)
    enqueue = invitation_enqueuer(config, company, now=now, automatic=False)
    policy = company_policy(company)

    def put(connection: Connection, issued: IssuedInvitation, name: str) -> int | None:
        outbox_id = _worded(enqueue, connection, issued, name)
        if into is not None and outbox_id is not None:
            into.append(outbox_id)
        return outbox_id

    return sum(
        invite_on_request(
            engine, company.id, request, policy=policy, portal_url=company.portal_url, now=now, enqueue=put
        )
        for request in requested_invites(engine, company.id)
    )


def check_portal_url(company: CompanyConfig) -> None:
    """`TemplateProblem` (the admin's to fix; requests wait for it) when the company has no
    `portal_url`: its invitation link would be a bare `/invite/TOKEN` nobody can open, and a
    new invitation supersedes the contact's earlier, working ones. The CLI refuses this before
    (`sync.checks.check_portal_url`, exit 2); the daemon's automatic and requested invitations
    stop here."""
    if not company.portal_url:
        raise TemplateProblem(
            f"company {company.id!r} has no portal_url: its invitation links would be /invite/TOKEN"
        )


def _why(account: PortalAccount) -> str:
    """Why this contact is not invited: its status when that says it (a conflict names the
    other customer's access, `arsync portal conflicts`), else the causes of ineligibility."""
    if account.status is PortalStatus.CONFLICT:
        return f"{CONFLICT} (see `arsync portal conflicts`)"
    if account.status is PortalStatus.DISABLED:
        return DISABLED
    if not account.eligible:
        return "not eligible (plan, inactive customer, invalid email, or contact not portal-enabled)"
    return f"status is {account.status}"
