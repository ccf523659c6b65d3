"""The portal API: what a portal service in any language needs, scoped to its key's company."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from portal_rules.invitations import Rejected
from portal_rules.money import decimal_text
from portal_rules.request_access import PUBLIC_ANSWER
from store import invitations
from store import portal as portal_store
from store.access_requests import record_access_request
from sync.http.answers import JSONBody, customer_in_portal, customer_listing
from sync.http.auth import Company, Context
from sync.http.errors import Problem
from sync.http.schemas import (
    AcceptIn,
    AcceptOut,
    AccountsOut,
    BalanceOut,
    ErrorOut,
    InvoicesOut,
    OptionalDay,
    RequestAccessIn,
    RequestAccessOut,
    bounded_text,
)
from sync.settings import company_policy

ERRORS = {
    401: {
        "model": ErrorOut,
        "description": "Missing or invalid API key",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    404: {"model": ErrorOut, "description": "Unknown company (or not the key's), or unknown customer"},
    # `sync.http.body_limit` refuses it on every /v1/ route, GET included (a GET may carry a body)
    413: {"model": ErrorOut, "description": "Body over 16 KiB (`sync.http.body_limit`)"},
    422: {"model": ErrorOut, "description": "Malformed input: the message names the bad parameter"},
    503: {
        "model": ErrorOut,
        "description": "The store is unreachable or busy: try again after Retry-After",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait: 5 for the store, 30 for a configuration error",
                "schema": {"type": "integer"},
            }
        },
    },
}
router = APIRouter(prefix="/v1/companies/{company}", tags=["portal"], responses=ERRORS)
CustomerRef = Annotated[bounded_text(max_length=64), Path(description="The accounting system's customer id.")]


@router.get(
    "/accounts",
    response_model=AccountsOut,
    operation_id="listAccounts",
    summary="The accounts an email can sign in to",
)
def accounts(
    company: Company, context: Context, email: Annotated[bounded_text(min_length=3, max_length=320), Query()]
) -> JSONBody:
    """The accounts this email can sign in to (eligible under the company's settings, and enabled)."""
    found = portal_store.reachable_accounts(context.engine, company.id, email, policy=company_policy(company))
    return JSONBody(
        {
            "accounts": [
                {"customer_ref": a.customer_ref, "display_name": a.display_name, "status": a.status}
                for a in found
            ]
        }
    )


@router.get(
    "/customers/{ref}/invoices",
    response_model=InvoicesOut,
    operation_id="listInvoices",
    summary="A customer's visible invoices",
)
def invoices(company: Company, context: Context, ref: CustomerRef) -> JSONBody:
    """The customer's visible invoices (the columns of `portal_invoices`), by due date."""
    return customer_listing(context, company, ref, "invoices", portal_store.visible_invoices)


@router.get(
    "/customers/{ref}/balance",
    response_model=BalanceOut,
    operation_id="getBalance",
    summary="A customer's balance due, past due and aging",
)
def balance(
    company: Company,
    context: Context,
    ref: CustomerRef,
    on: Annotated[
        OptionalDay, Query(description="The day, YYYY-MM-DD (default: today in the company's time zone).")
    ] = None,
) -> JSONBody:
    """Balance due, past-due amount and aging of the customer on a day: added up over its
    currencies (as `portal_customers`), and per currency in `balances_by_currency`."""
    customer_in_portal(context.engine, company, ref)
    day = on or context.today(company)
    found, aging, by_currency = portal_store.balances_and_aging(context.engine, company.id, ref, day)
    return JSONBody(
        {
            "on": day,
            **_balances(found, aging),
            "balances_by_currency": [
                {"currency": c.currency, **_balances(c.balances, c.aging)} for c in by_currency
            ],
        }
    )


def _balances(found: portal_store.Balances, aging: portal_store.Aging) -> dict:
    return {
        "balance_due": decimal_text(found.balance_due),
        "past_due_amount": decimal_text(found.past_due_amount),
        "past_due": found.past_due,
        "aging": {bucket: decimal_text(amount) for bucket, amount in aging.buckets().items()},
    }


@router.post(
    "/request-access",
    status_code=202,
    response_model=RequestAccessOut,
    operation_id="requestAccess",
    summary="Ask for a portal invitation",
)
def request_access(company: Company, context: Context, body: RequestAccessIn) -> RequestAccessOut:
    """Invite the email's eligible contact; the answer is the same whatever the email.

    Requests are limited per email. The request is recorded with its decision, the same
    work for every email, and nothing more happens in this process (timing would tell what
    the body does not): the request brings `arsync run`'s mail dispatch forward, which
    issues the invitation and sends its mail within a second or so (transactional mail: no
    delivery window). The answer leaves a fixed time after the request came in
    (`sync.http.steady`).
    """
    record_access_request(
        context.engine, company.id, body.email, now=context.clock(), policy=company_policy(company)
    )
    return RequestAccessOut(message=PUBLIC_ANSWER)


@router.post(
    "/invitations/accept",
    response_model=AcceptOut,
    operation_id="acceptInvitation",
    summary="Accept a portal invitation",
    responses={400: {"model": ErrorOut, "description": "invalid invitation token"}},
)
def accept(company: Company, context: Context, body: AcceptIn) -> AcceptOut:
    """Accept an invitation: unknown, superseded, expired and used tokens, and those of a contact
    the company's settings now make ineligible, all answer 400, a fixed time after the request
    came in (`sync.http.steady`: a visitor's probe of the worker's load)."""
    with context.engine.begin() as connection:
        outcome = invitations.accept(
            connection, company.id, body.token, policy=company_policy(company), now=context.clock()
        )
    if isinstance(outcome, Rejected):
        raise Problem(400, outcome.reason)
    customer_ref, email = outcome.key
    return AcceptOut(customer_ref=customer_ref, email=email, status=str(outcome.new_status))
