"""The portal API's account history: payments, credits and the statement of one customer."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from store import portal as portal_store
from sync.http.auth import Company, Context
from sync.http.errors import Problem
from sync.http.portal import ERRORS, CustomerRef, customer_in_portal
from sync.http.schemas import (
    CreditOut,
    CreditsOut,
    PaymentOut,
    PaymentsOut,
    StatementLineOut,
    StatementOut,
    money,
)

router = APIRouter(prefix="/v1/companies/{company}/customers/{ref}", tags=["portal"], responses=ERRORS)


@router.get("/payments", response_model=PaymentsOut)
def payments(company: Company, context: Context, ref: CustomerRef) -> PaymentsOut:
    """The customer's live payments (the columns of `portal_payments`), oldest first."""
    customer_in_portal(context.engine, company, ref)
    return PaymentsOut(
        payments=[
            PaymentOut(
                company_id=company.id,
                customer_ref=ref,
                payment_ref=p.payment_ref,
                paid_on=p.paid_on,
                currency=p.currency,
                amount=money(p.amount),
                unapplied=money(p.unapplied),
                reference=p.reference,
            )
            for p in portal_store.payments(context.engine, company.id, ref)
        ]
    )


@router.get("/credits", response_model=CreditsOut)
def credits(company: Company, context: Context, ref: CustomerRef) -> CreditsOut:
    """The customer's live credit notes (the columns of `portal_credits`); `remaining` is unapplied."""
    customer_in_portal(context.engine, company, ref)
    return CreditsOut(
        credits=[
            CreditOut(
                company_id=company.id,
                customer_ref=ref,
                credit_ref=c.credit_ref,
                doc_number=c.doc_number,
                issue_date=c.issue_date,
                currency=c.currency,
                total=money(c.total),
                remaining=money(c.remaining),
            )
            for c in portal_store.credits(context.engine, company.id, ref)
        ]
    )


@router.get("/statement", response_model=StatementOut, responses={422: {"description": "from after to"}})
def statement(
    company: Company,
    context: Context,
    ref: CustomerRef,
    start: Annotated[date | None, Query(alias="from", description="First day (inclusive)")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (inclusive)")] = None,
) -> StatementOut:
    """The account history between two days, with the opening and closing balances."""
    if start and end and start > end:
        raise Problem(422, "query parameter 'from': after 'to'")
    customer_in_portal(context.engine, company, ref)
    found = portal_store.statement(context.engine, company.id, ref, start=start, end=end)
    return StatementOut(
        company_id=company.id,
        customer_ref=ref,
        start=found.start,
        end=found.end,
        opening_balance=money(found.opening_balance),
        closing_balance=money(found.closing_balance),
        lines=[
            StatementLineOut(
                entry_date=line.entry_date,
                kind=line.kind,
                ref=line.ref,
                doc_number=line.doc_number,
                amount=money(line.amount),
                running_balance=money(line.running_balance),
            )
            for line in found.lines
        ],
    )
