"""The portal API's JSON shapes (they are the OpenAPI document's schemas too).

Money travels as decimal strings ("123.40", never a float); dates as ISO 8601.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from sync.days import parse_day

EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
# A decimal string (`portal_rules.money.decimal_text`): two places, up to four when the further
# ones are not zeros. Declared as such so a client generated from the document can read it as
# a decimal; the answers are encoded by the routes, so this describes and checks nothing.
MONEY_SCHEMA = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2,4}$", "examples": ["123.40"]}
Money = Annotated[str, WithJsonSchema(MONEY_SCHEMA)]


def _iso_day(value: object) -> object:
    """A day as ISO 8601 writes it, YYYY-MM-DD, only: pydantic alone also takes a number as a
    Unix time (`on=0` was 1970-01-01) and says "date or datetime" of a compact 20261204."""
    if isinstance(value, str):
        return parse_day(value)
    if isinstance(value, date):
        return value
    raise ValueError("not a date (YYYY-MM-DD)")


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


def _day_or_none(value: object) -> object:
    """An optional day's query parameter: left empty (`?from=&to=`, as an HTML form sends an
    unset field) it is absent, as if not given; anything else is read as `IsoDay`."""
    if isinstance(value, str) and not value.strip():
        return None
    return _iso_day(value)


OptionalDay = Annotated[date | None, BeforeValidator(_day_or_none)]  # a query's optional day


def _no_nul(value: str) -> str:
    """PostgreSQL's text cannot hold a NUL and SQLite stores it: refused as the request's
    mistake on either store, naming the parameter (the store's error could name none)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]  # a string that reaches the store


def bounded_text(*, min_length: int | None = None, max_length: int | None = None) -> Any:
    """A `Text` of bounded length, for a path or query parameter. The bounds are the string's
    own, checked before the NUL check: given after it (`Path(max_length=...)` on `Text`),
    pydantic checks them as a sequence's and says "Value should have at most 64 items after
    validation" of a customer id 65 characters long."""
    bounds = StringConstraints(min_length=min_length, max_length=max_length)
    return Annotated[str, bounds, AfterValidator(_no_nul)]


class ErrorOut(BaseModel):
    error: str


class HealthOut(BaseModel):
    status: str = Field(description="ok")


class ReadyOut(BaseModel):
    status: str = Field(description="ready")
    revision: str = Field(description="The store's schema revision")


class UnreadyOut(BaseModel):
    status: str = Field(description="unavailable")
    error: str = Field(description="Why, and what to run when a command helps")


class AccountOut(BaseModel):
    customer_ref: str
    display_name: str
    status: str


class AccountsOut(BaseModel):
    accounts: list[AccountOut]


class InvoiceOut(BaseModel):
    company_id: str
    customer_ref: str
    invoice_ref: str
    doc_number: str | None
    issue_date: date | None
    due_date: date | None
    currency: str
    total: Money
    balance: Money


class InvoicesOut(BaseModel):
    invoices: list[InvoiceOut]


class AgingOut(BaseModel):
    """The buckets' names as the answers spell them (the routes encode them; never built here)."""

    current: Money
    days_1_30: Money = Field(alias="1_30")
    days_31_60: Money = Field(alias="31_60")
    days_61_90: Money = Field(alias="61_90")
    over_90: Money


class _BalancesOut(BaseModel):
    balance_due: Money
    past_due_amount: Money
    past_due: bool
    aging: AgingOut = Field(description="Open balance by days past due")


class CurrencyBalancesOut(_BalancesOut):
    currency: str


class BalanceOut(_BalancesOut):
    """Added up over the customer's currencies, not converted (as `portal_customers`), and per
    currency of its open invoices in `balances_by_currency` (a Xero contact may have several)."""

    on: date
    balances_by_currency: list[CurrencyBalancesOut]


class RequestAccessIn(BaseModel):
    email: Text = Field(
        min_length=3,
        max_length=320,
        description="What the customer typed: one @, no spaces (leading and trailing ones are ignored)",
        json_schema_extra={"pattern": rf"^\s*{EMAIL.pattern}\s*$"},  # what `_looks_like_email` checks
    )

    @field_validator("email")
    @classmethod
    def _looks_like_email(cls, value: str) -> str:
        if not EMAIL.fullmatch(value.strip()):
            raise ValueError("not an email address")
        return value


class RequestAccessOut(BaseModel):
    message: str


class AcceptIn(BaseModel):
    token: str  # any string: one no invitation has (empty, too long) is "invalid invitation token"


class AcceptOut(BaseModel):
    customer_ref: str
    email: str
    status: str


class PaymentOut(BaseModel):
    company_id: str
    customer_ref: str
    payment_ref: str
    paid_on: date | None
    currency: str
    amount: Money
    unapplied: Money
    reference: str | None


class PaymentsOut(BaseModel):
    payments: list[PaymentOut]


class CreditOut(BaseModel):
    company_id: str
    customer_ref: str
    credit_ref: str
    doc_number: str | None
    issue_date: date | None
    currency: str
    total: Money
    remaining: Money


class CreditsOut(BaseModel):
    credits: list[CreditOut]


class StatementLineOut(BaseModel):
    entry_date: date | None
    kind: str = Field(description="invoice, credit or payment")
    ref: str
    doc_number: str | None
    amount: Money
    running_balance: Money = Field(description="In the line's currency alone when there are several")
    currency: str


class CurrencyBalanceOut(BaseModel):
    currency: str
    opening_balance: Money
    closing_balance: Money


class StatementOut(BaseModel):
    company_id: str
    customer_ref: str
    start: date | None = Field(serialization_alias="from")
    end: date | None = Field(serialization_alias="to")
    opening_balance: Money | None = Field(description="Null when the statement is in several currencies")
    closing_balance: Money | None = Field(description="Null when the statement is in several currencies")
    lines: list[StatementLineOut]
    balances_by_currency: list[CurrencyBalanceOut] = Field(
        description="Its balances in each of its currencies, by code (a Xero contact may have several)"
    )
