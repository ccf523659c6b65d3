"""A customer's payments, credits and statement, read with exact money (for `store.portal`).

The same rows as the public views `portal_payments`, `portal_credits` and
`portal_statement`, scoped to one company and customer, with amounts as `Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, Date, Engine, String, and_, func, select, text

from portal_rules.aging import Settlement
from store.history.tables import CREDITS, PAYMENTS
from store.history.views import order_sql, settlements_sql, statement_sql
from store.tables import Customer
from store.types import Money

CUSTOMERS = Customer.__table__
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PortalPayment:
    payment_ref: str
    paid_on: date | None
    currency: str
    amount: Decimal
    unapplied: Decimal
    reference: str | None


@dataclass(frozen=True, slots=True)
class PortalCredit:
    credit_ref: str
    doc_number: str | None
    issue_date: date | None
    currency: str
    total: Decimal
    remaining: Decimal


@dataclass(frozen=True, slots=True)
class StatementLine:
    entry_date: date | None
    kind: str  # invoice | credit | payment
    ref: str
    doc_number: str | None
    amount: Decimal  # invoices add, credits and payments (negative) settle
    running_balance: Decimal  # over the whole history, so the first line carries the opening balance
    currency: str | None = None  # not a column of the view; None only in a line built by hand


@dataclass(frozen=True, slots=True)
class CurrencyBalance:
    """A statement's balances in one currency."""

    currency: str
    opening_balance: Decimal
    closing_balance: Decimal


@dataclass(frozen=True, slots=True)
class Statement:
    """The lines between `start` and `end` (inclusive; None: unbounded) and the balances around them.

    As the view, the balances and running balances add every line whatever its currency; a
    Xero contact may be billed in several, so `balances` holds them per currency (by code)."""

    start: date | None
    end: date | None
    opening_balance: Decimal  # the sum of every amount before `start` (undated entries included)
    lines: tuple[StatementLine, ...]
    closing_balance: Decimal  # opening balance plus the lines
    balances: tuple[CurrencyBalance, ...] = ()

    @property
    def several_currencies(self) -> bool:
        """Whether its sums add amounts of different currencies (and so mean nothing)."""
        return len(self.balances) > 1

    def running_in_currency(self) -> tuple[Decimal, ...]:
        """Each line's running balance in its own currency: that currency's opening balance
        plus its lines so far (the running balances themselves with a single currency)."""
        running = {b.currency: b.opening_balance for b in self.balances}
        found = []
        for line in self.lines:
            running[line.currency] = running.get(line.currency, ZERO) + line.amount
            found.append(running[line.currency])
        return tuple(found)


def _portal_customer(company_id: str, alias_ref):
    return and_(
        CUSTOMERS.c.company_id == company_id,
        CUSTOMERS.c.ref == alias_ref,
        CUSTOMERS.c.portal_visible.is_(True),
    )


def payments(engine: Engine, company_id: str, customer_ref: str) -> list[PortalPayment]:
    """The customer's live payments (as `portal_payments`), oldest first."""
    p = PAYMENTS.c
    query = (
        select(p.ref, p.paid_on, p.currency, p.amount, p.unapplied, p.reference)
        .join(CUSTOMERS, _portal_customer(company_id, p.customer_ref))
        .where(p.company_id == company_id, p.customer_ref == customer_ref)
        .where(p.voided.is_(False), p.deleted.is_(False), p.credit_only.is_(False))
        .order_by(p.paid_on.is_(None).desc(), p.paid_on, p.ref)
    )
    with engine.connect() as connection:
        return [PortalPayment(*row) for row in connection.execute(query)]


def credits(engine: Engine, company_id: str, customer_ref: str) -> list[PortalCredit]:
    """The customer's live credit notes/memos (as `portal_credits`), oldest first."""
    r = CREDITS.c
    query = (
        select(r.ref, r.doc_number, r.issue_date, r.currency, r.total, r.remaining)
        .join(CUSTOMERS, _portal_customer(company_id, r.customer_ref))
        .where(r.company_id == company_id, r.customer_ref == customer_ref)
        .where(r.voided.is_(False), r.deleted.is_(False), r.draft.is_(False))
        .order_by(r.issue_date.is_(None).desc(), r.issue_date, r.ref)
    )
    with engine.connect() as connection:
        return [PortalCredit(*row) for row in connection.execute(query)]


def statement(
    engine: Engine,
    company_id: str,
    customer_ref: str,
    *,
    start: date | None = None,
    end: date | None = None,
) -> Statement:
    """The customer's statement (as `portal_statement`), optionally between two dates."""
    with engine.connect() as connection:
        return statement_in(connection, company_id, customer_ref, start=start, end=end)


def statement_in(
    connection: Connection,
    company_id: str,
    customer_ref: str,
    *,
    start: date | None = None,
    end: date | None = None,
) -> Statement:
    """`statement`, read on a connection the caller holds (for reads that must agree)."""
    opening, shown = ZERO, []
    openings: dict[str | None, Decimal] = {}
    for line in _history(connection, company_id, customer_ref):
        if start is not None and (line.entry_date is None or line.entry_date < start):
            opening += line.amount
            openings[line.currency] = openings.get(line.currency, ZERO) + line.amount
        elif end is None or line.entry_date is None or line.entry_date <= end:
            shown.append(line)
    closing = opening + sum((line.amount for line in shown), ZERO)
    closings = dict(openings)
    for line in shown:
        closings[line.currency] = closings.get(line.currency, ZERO) + line.amount
    balances = tuple(CurrencyBalance(c, openings.get(c, ZERO), closings[c]) for c in sorted(closings))
    return Statement(start, end, opening, tuple(shown), closing, balances)


def _history(connection: Connection, company_id: str, customer_ref: str) -> list[StatementLine]:
    """Every statement line of the customer, in the statement's order."""
    dialect = connection.dialect.name
    body = statement_sql(dialect, lambda column: column, scoped=True, currency=True)
    query = text(f"SELECT * FROM ({body}) s ORDER BY {order_sql(dialect, 's.')}").columns(
        entry_date=Date(), kind=String(), ref=String(), doc_number=String(),
        amount=Money(), running_balance=Money(), currency=String(),
    )  # fmt: skip
    rows = connection.execute(query, {"company_id": company_id, "customer_ref": customer_ref})
    return [
        StatementLine(r.entry_date, r.kind, r.ref, r.doc_number, r.amount, r.running_balance, r.currency)
        for r in rows
    ]


def settlements_in(connection: Connection, company_id: str, customer_ref: str) -> list[Settlement]:
    """The money the customer's statement applies to each of its invoices, dated as its lines."""
    query = text(settlements_sql(connection.dialect.name)).columns(
        invoice_ref=String(), entry_date=Date(), amount=Money()
    )
    rows = connection.execute(query, {"company_id": company_id, "customer_ref": customer_ref})
    return [Settlement(r.invoice_ref, r.entry_date, r.amount) for r in rows]


def portal_customer_name(engine: Engine, company_id: str, customer_ref: str) -> str | None:
    """The display name of a customer in `portal_customers`; None when the portal has no such customer."""
    with engine.connect() as connection:
        return portal_customer_name_in(connection, company_id, customer_ref)


def portal_customer_name_in(connection: Connection, company_id: str, customer_ref: str) -> str | None:
    """`portal_customer_name`, read on a connection the caller holds."""
    return connection.scalar(
        select(CUSTOMERS.c.display_name).where(_portal_customer(company_id, customer_ref))
    )


@dataclass(frozen=True, slots=True)
class HistoryOverview:
    """A company's account history in numbers, for the demo and admins."""

    payments: int
    credits: int
    unapplied_credit: Decimal
    busiest_customer: str | None  # the customer with the most statement lines settling invoices


def overview(engine: Engine, company_id: str) -> HistoryOverview:
    """How many live payments and credits the portal shows, and whose statement says the most."""
    busiest = text(
        "SELECT customer_ref FROM portal_statement WHERE company_id = :c AND kind <> 'invoice' "
        "GROUP BY customer_ref ORDER BY COUNT(*) DESC, customer_ref LIMIT 1"
    )
    p, r = PAYMENTS.c, CREDITS.c
    with engine.connect() as connection:
        paid = connection.scalar(
            select(func.count())
            .select_from(PAYMENTS.join(CUSTOMERS, _portal_customer(company_id, p.customer_ref)))
            .where(p.company_id == company_id, p.voided.is_(False), p.deleted.is_(False))
            .where(p.credit_only.is_(False))
        )
        credited = connection.execute(
            select(func.count(), func.coalesce(func.sum(r.remaining), 0))
            .select_from(CREDITS.join(CUSTOMERS, _portal_customer(company_id, r.customer_ref)))
            .where(r.company_id == company_id, r.voided.is_(False), r.deleted.is_(False), r.draft.is_(False))
        ).one()
        customer = connection.scalar(busiest, {"c": company_id})
    return HistoryOverview(paid or 0, credited[0], credited[1], customer)
