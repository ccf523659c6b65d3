"""The portal API's account history: payments, credits and the statement of one customer."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from mailer.statement_doc import statement_disposition
from portal_rules.money import decimal_text
from store import portal as portal_store
from sync.config import CompanyConfig
from sync.http.answers import JSONBody, customer_in_portal, customer_listing, plain
from sync.http.auth import Company, Context
from sync.http.context import ServerContext
from sync.http.errors import Problem
from sync.http.portal import ERRORS, CustomerRef
from sync.http.schemas import CreditsOut, ErrorOut, OptionalDay, PaymentsOut, StatementOut

FirstDay = Annotated[OptionalDay, Query(alias="from", description="First day, YYYY-MM-DD (inclusive)")]
LastDay = Annotated[OptionalDay, Query(alias="to", description="Last day, YYYY-MM-DD (inclusive)")]
PERIOD_REFUSED = {
    "model": ErrorOut,
    "description": "Malformed input, `from` after `to`, or after today without `to`",
}

router = APIRouter(prefix="/v1/companies/{company}/customers/{ref}", tags=["portal"], responses=ERRORS)


@router.get(
    "/payments",
    response_model=PaymentsOut,
    operation_id="listPayments",
    summary="A customer's payments",
)
def payments(company: Company, context: Context, ref: CustomerRef) -> JSONBody:
    """The customer's live payments (the columns of `portal_payments`), oldest first."""
    return customer_listing(context, company, ref, "payments", portal_store.payments)


@router.get(
    "/credits",
    response_model=CreditsOut,
    operation_id="listCredits",
    summary="A customer's credit notes",
)
def credits(company: Company, context: Context, ref: CustomerRef) -> JSONBody:
    """The customer's live credit notes (the columns of `portal_credits`); `remaining` is unapplied."""
    return customer_listing(context, company, ref, "credits", portal_store.credits)


@router.get(
    "/statement",
    response_model=StatementOut,
    operation_id="getStatement",
    summary="A customer's statement",
    responses={422: PERIOD_REFUSED},
)
def statement(
    company: Company,
    context: Context,
    ref: CustomerRef,
    start: FirstDay = None,
    end: LastDay = None,
) -> JSONBody:
    """The account history between two days, with the opening and closing balances, and
    those per currency. A statement in several currencies (a Xero contact's) has no sums over
    them (null), and each line's running balance is in its own currency."""
    _check_period(context, company, start, end)
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


@router.get(
    "/statement.pdf",
    response_class=Response,
    operation_id="getStatementPdf",
    summary="A customer's statement as a PDF",
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The statement as a PDF, an attachment named statement-REF.pdf",
        },
        422: PERIOD_REFUSED,
    },
)
def statement_pdf(
    company: Company,
    context: Context,
    ref: CustomerRef,
    start: FirstDay = None,
    end: LastDay = None,
) -> Response:
    """The statement as the PDF `arsync statement --pdf` writes and reminders attach
    (`attach_statement`), with its aging on today in the company's time zone: a portal in any
    language can offer it for download."""
    from mailer.statement_doc import load_document  # fpdf2 and its font: only when asked for
    from mailer.statement_pdf import render_statement

    _check_period(context, company, start, end)
    day = context.today(company)
    document = load_document(context.engine, company.id, company.name, ref, day=day, start=start, end=end)
    if document is None:
        raise Problem(404, "no such customer")
    return Response(
        render_statement(document).data,
        media_type="application/pdf",
        headers={"Content-Disposition": statement_disposition(ref)},
    )


def _check_period(
    context: ServerContext, company: CompanyConfig, start: date | None, end: date | None
) -> None:
    """422 for a period `arsync statement` refuses too: backwards, or from a day ahead with no end
    (a typo, else a period ahead)."""
    if start and end and start > end:
        raise Problem(422, "query parameter 'from': after 'to'")
    if start and not end and start > (today := context.today(company)):
        raise Problem(
            422, f"query parameter 'from': after today ({today}): give 'to' as well for a period ahead"
        )
