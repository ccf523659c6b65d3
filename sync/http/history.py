"""The portal API's account history: payments, credits and the statement of one customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from portal_rules.money import decimal_text
from store import portal as portal_store
from sync.http.answers import JSONBody, customer_in_portal, customer_listing, plain
from sync.http.auth import Company, Context
from sync.http.errors import Problem
from sync.http.portal import ERRORS, CustomerRef
from sync.http.schemas import CreditsOut, ErrorOut, OptionalDay, PaymentsOut, StatementOut

router = APIRouter(prefix="/v1/companies/{company}/customers/{ref}", tags=["portal"], responses=ERRORS)


@router.get("/payments", response_model=PaymentsOut)
def payments(company: Company, context: Context, ref: CustomerRef) -> JSONBody:
    """The customer's live payments (the columns of `portal_payments`), oldest first."""
    return customer_listing(context, company, ref, "payments", portal_store.payments)


@router.get("/credits", response_model=CreditsOut)
def credits(company: Company, context: Context, ref: CustomerRef) -> JSONBody:
    """The customer's live credit notes (the columns of `portal_credits`); `remaining` is unapplied."""
    return customer_listing(context, company, ref, "credits", portal_store.credits)


@router.get(
    "/statement",
    response_model=StatementOut,
    responses={
        422: {
            "model": ErrorOut,
            "description": "Malformed input, `from` after `to`, or after today without `to`",
        }
    },
)
def statement(
    company: Company,
    context: Context,
    ref: CustomerRef,
    start: Annotated[
        OptionalDay, Query(alias="from", description="First day, YYYY-MM-DD (inclusive)")
    ] = None,
    end: Annotated[OptionalDay, Query(alias="to", description="Last day, YYYY-MM-DD (inclusive)")] = None,
) -> JSONBody:
    """The account history between two days, with the opening and closing balances, and
    those per currency. A statement in several currencies (a Xero contact's) has no sums over
    them (null), and each line's running balance is in its own currency."""
    if start and end and start > end:
        raise Problem(422, "query parameter 'from': after 'to'")
    if start and not end and start > (today := context.today(company)):  # as `arsync statement`
        raise Problem(
            422, f"query parameter 'from': after today ({today}): give 'to' as well for a period ahead"
        )
    customer_in_portal(context.engine, company, ref)
    found = portal_store.statement(context.engine, company.id, ref, start=start, end=end)
    several = found.several_currencies
    lines = [plain(line) for line in found.lines]
    if several:
        for line, balance in zip(lines, found.running_in_currency(), strict=True):
            line["running_balance"] = decimal_text(balance)
    return JSONBody(
        {
            "company_id": company.id,
            "customer_ref": ref,
            "from": found.start,
            "to": found.end,
            "opening_balance": None if several else decimal_text(found.opening_balance),
            "closing_balance": None if several else decimal_text(found.closing_balance),
            "lines": lines,
            "balances_by_currency": [plain(balance) for balance in found.balances],
        }
    )
