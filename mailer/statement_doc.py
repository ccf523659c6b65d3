"""What one printed statement shows, read from the store (the PDF is `mailer.statement_pdf`).

Plain data, so reminders can carry it to the worker processes that render mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from sqlalchemy import Engine

from portal_rules.aging import Aging, aging_day
from store import portal
from store.history.reads import ZERO, CurrencyBalance, Statement


@dataclass(frozen=True, slots=True)
class StatementDocument:
    """Everything one printed statement shows."""

    company_name: str
    customer_ref: str
    customer_name: str
    statement: Statement
    aging: Aging  # over every currency: what it says only with one currency
    day: date  # the day it is made
    agings: tuple[tuple[str, Aging], ...] = ()  # per currency, by code

    @property
    def several_currencies(self) -> bool:
        """Whether it must give its balances and aging per currency (a Xero contact billed in
        several): a sum over them would mean nothing."""
        return self.statement.several_currencies or len(self.agings) > 1

    def by_currency(self) -> tuple[tuple[CurrencyBalance, Aging], ...]:
        """Per currency (by code): its opening and closing balance, and its aging."""
        balances = {b.currency: b for b in self.statement.balances}
        agings = dict(self.agings)
        return tuple(
            (balances.get(c, CurrencyBalance(c, ZERO, ZERO)), agings.get(c, Aging()))
            for c in sorted(balances.keys() | agings.keys())
        )

    @property
    def aging_on(self) -> date:
        """The day the aging is on: the statement's end when that is before the day it is made."""
        return aging_day(self.day, self.statement.end)


def load_document(
    engine: Engine,
    company_id: str,
    company_name: str,
    customer_ref: str,
    *,
    day: date,
    start: date | None = None,
    end: date | None = None,
) -> StatementDocument | None:
    """The statement of a customer in `portal_customers`; None when the portal has no such customer.
    Lines and aging come from one snapshot of the store, so they agree while a sync runs."""
    found = portal.statement_with_agings(engine, company_id, customer_ref, day=day, start=start, end=end)
    if found is None:
        return None
    name, statement, aging, agings = found
    return StatementDocument(company_name, customer_ref, name, statement, aging, day, agings)


_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def statement_file_name(customer_ref: str) -> str:
    """`statement-REF.pdf`, whatever the ref holds (a quote or slash would break the header)."""
    return f"statement-{_UNSAFE_IN_NAME.sub('-', customer_ref)}.pdf"


def statement_disposition(customer_ref: str) -> str:
    """An HTTP `Content-Disposition` for the statement of `customer_ref`: the ASCII name, and
    the ref as it is (RFC 6266's `filename*`) when that had to change it ("Ü-1")."""
    plain = statement_file_name(customer_ref)
    exact = f"statement-{customer_ref}.pdf"
    if plain == exact:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(exact, safe='')}"
