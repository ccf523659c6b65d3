"""The Python API portal services (and the CLI) use. Every function is scoped by company.

Reads mirror the public views; writes (request access, accept) go through `portal_rules`
and `store.invitations`. Mail is not this package's business: `request_access` takes an
`enqueue` callable that puts the invitation mail in the outbox on the same connection,
inside the same transaction as the invitation itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, and_, func, insert, literal, outerjoin, select, update

from portal_rules.aging import Aging, aging_day, invoices_on
from portal_rules.aging import aging as aging_of
from portal_rules.balances import balance_due, past_due_amount
from portal_rules.invitations import IssuedInvitation, Rejected, can_invite
from portal_rules.request_access import (
    PUBLIC_ANSWER,
    OpenInvitation,
    already_answered,
    decide_request_access,
)
from portal_rules.types import CompanyPolicy, InvoiceFacts, PortalStatus
from portal_rules.visibility import is_visible
from store import invitations, jobs
from store.facts import invoice_facts
from store.history.reads import (
    PortalCredit,
    PortalPayment,
    Statement,
    StatementLine,
    credits,
    payments,
    portal_customer_name,
    portal_customer_name_in,
    settlements_in,
    statement,
    statement_in,
)
from store.snapshot import snapshot
from store.tables import PENDING, AccessRequest, Customer, Invitation, Invoice, Outbox

INVOICES = Invoice.__table__
CUSTOMERS = Customer.__table__
Enqueue = Callable[..., None]  # enqueue(connection, issued: IssuedInvitation, display_name: str)


@dataclass(frozen=True, slots=True)
class Account:
    """A customer account one login may open."""

    company_id: str
    customer_ref: str
    display_name: str
    email: str
    status: str


@dataclass(frozen=True, slots=True)
class PortalInvoice:
    invoice_ref: str
    doc_number: str | None
    issue_date: date | None
    due_date: date | None
    currency: str
    total: Decimal
    balance: Decimal


@dataclass(frozen=True, slots=True)
class Balances:
    balance_due: Decimal
    past_due_amount: Decimal

    @property
    def past_due(self) -> bool:
        """The portal shows "Past Due" when this is true."""
        return self.past_due_amount > 0


def reachable_accounts(
    engine: Engine, company_id: str, email: str, *, policy: CompanyPolicy
) -> list[Account]:
    """The accounts `email` may log in to (eligible and enabled), for login and account switching.

    `policy`, the company's settings now, judges eligibility with them (`load_accounts`): a
    plan without the portal, or a customer no longer shown, ends the login at once, not at
    the next sync. Settings that widen eligibility wait for that sync."""
    with engine.connect() as connection:
        accounts = invitations.load_accounts(connection, company_id, email=email, policy=policy)
        names = customer_names(connection, company_id, [a.customer_ref for a in accounts])
    return [
        Account(company_id, a.customer_ref, names.get(a.customer_ref, ""), a.email, str(a.status))
        for a in accounts
        if a.eligible and a.status is PortalStatus.ENABLED
    ]


def visible_invoices(engine: Engine, company_id: str, customer_ref: str) -> list[PortalInvoice]:
    """The customer's invoices the portal may show, by due date."""
    facts, customer_visible = _invoice_facts(engine, company_id, customer_ref)
    shown = [f for f in facts if is_visible(f, customer_visible)]
    shown.sort(key=lambda f: (f.due_date or date.max, f.ref))
    return [
        PortalInvoice(f.ref, f.doc_number, f.issue_date, f.due_date, f.currency, f.total, f.balance)
        for f in shown
    ]


def balances(engine: Engine, company_id: str, customer_ref: str, day: date) -> Balances:
    """Balance due and past-due amount of the customer on `day` (the company's local date)."""
    facts, customer_visible = _invoice_facts(engine, company_id, customer_ref)
    return Balances(balance_due(facts, customer_visible), past_due_amount(facts, day, customer_visible))


def aging(engine: Engine, company_id: str, customer_ref: str, day: date) -> Aging:
    """The customer's open balance on `day` by days past due (current, 1–30, 31–60, 61–90, over 90)."""
    facts, customer_visible = _invoice_facts(engine, company_id, customer_ref)
    return aging_of(facts, day, customer_visible)


def balances_and_aging(
    engine: Engine, company_id: str, customer_ref: str, day: date
) -> tuple[Balances, Aging]:
    """`balances` and `aging` from one read of the invoices, so that a sync committing between
    two reads cannot make them disagree."""
    facts, customer_visible = _invoice_facts(engine, company_id, customer_ref)
    found = Balances(balance_due(facts, customer_visible), past_due_amount(facts, day, customer_visible))
    return found, aging_of(facts, day, customer_visible)


def statement_with_aging(
    engine: Engine,
    company_id: str,
    customer_ref: str,
    *,
    day: date,
    start: date | None = None,
    end: date | None = None,
) -> tuple[str, Statement, Aging] | None:
    """The customer's name, statement and aging, all from one snapshot of the store, so that
    a sync committing meanwhile cannot print a closing balance the aging contradicts; None when
    the portal has no such customer. The aging is on `day` (today) over today's balances, or,
    for a statement that ends before `day`, on its end over the balances its lines give then.
    It adds every currency up; `statement_with_agings` keeps them apart."""
    found = statement_with_agings(engine, company_id, customer_ref, day=day, start=start, end=end)
    return None if found is None else found[:3]


def statement_with_agings(
    engine: Engine,
    company_id: str,
    customer_ref: str,
    *,
    day: date,
    start: date | None = None,
    end: date | None = None,
) -> tuple[str, Statement, Aging, tuple[tuple[str, Aging], ...]] | None:
    """`statement_with_aging`, and the aging per currency (by code) of every currency the
    statement or an open invoice is in."""
    on = aging_day(day, end)
    with snapshot(engine) as connection:
        name = portal_customer_name_in(connection, company_id, customer_ref)
        if name is None:
            return None
        found = statement_in(connection, company_id, customer_ref, start=start, end=end)
        facts, customer_visible = _invoice_facts_in(connection, company_id, customer_ref)
        if on < day:
            facts = invoices_on(facts, settlements_in(connection, company_id, customer_ref), on)
    open_ = {f.currency for f in facts if f.balance > 0 and is_visible(f, customer_visible)}
    currencies = sorted(open_ | {b.currency for b in found.balances})
    agings = tuple(
        (c, aging_of([f for f in facts if f.currency == c], on, customer_visible)) for c in currencies
    )
    return name, found, aging_of(facts, on, customer_visible), agings


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


def accept_invitation(
    engine: Engine, company_id: str, token: str, *, policy: CompanyPolicy, now: datetime
) -> str | None:
    """Accept an invitation token; None on success, else "invalid invitation token"."""
    with engine.begin() as connection:
        outcome = invitations.accept(connection, company_id, token, policy=policy, now=now)
    return outcome.reason if isinstance(outcome, Rejected) else None


def _invoice_facts(engine: Engine, company_id: str, customer_ref: str) -> tuple[list[InvoiceFacts], bool]:
    with engine.connect() as connection:
        return _invoice_facts_in(connection, company_id, customer_ref)


def _invoice_facts_in(
    connection: Connection, company_id: str, customer_ref: str
) -> tuple[list[InvoiceFacts], bool]:
    customer_visible = bool(
        connection.scalar(
            select(CUSTOMERS.c.portal_visible).where(
                CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.ref == customer_ref
            )
        )
    )
    rows = (
        connection.execute(
            select(INVOICES).where(
                INVOICES.c.company_id == company_id, INVOICES.c.customer_ref == customer_ref
            )
        )
        .mappings()
        .all()
    )
    return [invoice_facts(r) for r in rows], customer_visible


def customer_names(connection, company_id: str, refs: list[str]) -> dict[str, str]:
    """Display names by ref, asked 500 refs at a time (a statement's parameters are bounded)."""
    names: dict[str, str] = {}
    for start in range(0, len(refs), 500):
        rows = connection.execute(
            select(CUSTOMERS.c.ref, CUSTOMERS.c.display_name).where(
                CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.ref.in_(list(refs[start : start + 500]))
            )
        )
        names.update(rows.all())
    return names


__all__ = [
    "Account",
    "Aging",
    "Balances",
    "IssuedInvitation",
    "PortalCredit",
    "PortalInvoice",
    "PortalPayment",
    "Statement",
    "StatementLine",
    "accept_invitation",
    "aging",
    "balances",
    "credits",
    "payments",
    "portal_customer_name",
    "reachable_accounts",
    "request_access",
    "statement",
    "statement_with_aging",
    "statement_with_agings",
    "visible_invoices",
]


def busiest_customer(engine: Engine, company_id: str) -> str | None:
    """The portal customer with the most visible invoices (ties: the lowest ref)."""
    query = (
        select(Invoice.customer_ref)
        .join(Customer, (Customer.company_id == Invoice.company_id) & (Customer.ref == Invoice.customer_ref))
        .where(Invoice.company_id == company_id, Invoice.visible.is_(True), Customer.portal_visible.is_(True))
        .group_by(Invoice.customer_ref)
        .order_by(func.count().desc(), Invoice.customer_ref)
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.scalar(query)
