"""The Python API portal services (and the CLI) use. Every function is scoped by company.

Reads mirror the public views; writes (request access, accept) go through `portal_rules`
and `store.invitations`. Mail is not this package's business: `request_access` takes an
`enqueue` callable that puts the invitation mail in the outbox on the same connection,
inside the same transaction as the invitation itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, select

from portal_rules.aging import Aging, aging_day, invoices_on
from portal_rules.aging import aging as aging_of
from portal_rules.balances import balance_due, past_due_amount
from portal_rules.invitations import IssuedInvitation, Rejected
from portal_rules.types import CompanyPolicy, InvoiceFacts, PortalStatus
from portal_rules.visibility import is_visible
from store import invitations
from store.access_requests import request_access
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
from store.portal_customers import customer_names
from store.snapshot import snapshot
from store.tables import Customer, Invoice

INVOICES = Invoice.__table__
CUSTOMERS = Customer.__table__


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


@dataclass(frozen=True, slots=True)
class CurrencyBalances:
    """A customer's balances and aging in one currency."""

    currency: str
    balances: Balances
    aging: Aging


def balances_and_aging(
    engine: Engine, company_id: str, customer_ref: str, day: date
) -> tuple[Balances, Aging, tuple[CurrencyBalances, ...]]:
    """`balances` and `aging` from one read of the invoices, so that a sync committing between
    two reads cannot make them disagree: over every currency added up (as `portal_customers`
    does), and per currency (by code) of the visible invoices with a balance, since a Xero
    contact may be billed in several and a sum of dollars and euros means nothing."""
    facts, customer_visible = _invoice_facts(engine, company_id, customer_ref)
    open_ = sorted({f.currency for f in facts if f.balance != 0 and is_visible(f, customer_visible)})
    by_currency = tuple(
        CurrencyBalances(
            c, *_balances_and_aging([f for f in facts if f.currency == c], day, customer_visible)
        )
        for c in open_
    )
    return *_balances_and_aging(facts, day, customer_visible), by_currency


def _balances_and_aging(
    facts: list[InvoiceFacts], day: date, customer_visible: bool
) -> tuple[Balances, Aging]:
    found = Balances(balance_due(facts, customer_visible), past_due_amount(facts, day, customer_visible))
    return found, aging_of(facts, day, customer_visible)


def statement_with_agings(
    engine: Engine,
    company_id: str,
    customer_ref: str,
    *,
    day: date,
    start: date | None = None,
    end: date | None = None,
) -> tuple[str, Statement, Aging, tuple[tuple[str, Aging], ...]] | None:
    """The customer's name, statement and aging, all from one snapshot of the store, so that
    a sync committing meanwhile cannot print a closing balance the aging contradicts; None when
    the portal has no such customer. The aging is on `day` (today) over today's balances, or,
    for a statement that ends before `day`, on its end over the balances its lines give then:
    over every currency added up, and per currency (by code) of every currency the statement
    or an open invoice is in."""
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


__all__ = [
    "Account",
    "Aging",
    "Balances",
    "CurrencyBalances",
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
    "statement_with_agings",
    "visible_invoices",
]
