"""QuickBooks Online `Payment` and `CreditMemo` JSON for the simulator's ledger records.

A QuickBooks payment has one line per linked transaction: invoice lines receive money, and
credit memo lines supply credit (a credit memo applied to an invoice is a payment linking
both, `TotalAmt` 0 when no money moves). Voided payments and credit memos keep their record
with zero amounts and a `PrivateNote` "Voided"; deleted ones appear only in CDC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from connectors.simulators import quickbooks_render as render
from connectors.simulators.ledger import SimAllocation, SimCredit, SimPayment
from connectors.simulators.model import SimCustomer, SimInvoice
from connectors.simulators.quickbooks_query import id_key

ZERO = Decimal("0.00")
Carried = list[tuple[SimCredit, SimAllocation]]  # credit applications a payment carries


def getters(entity: str) -> dict[str, Callable[[Any], Any]]:
    """Query getters over index rows (`row.record` a SimPayment or SimCredit)."""
    if entity == "Payment":
        return {
            "TxnDate": lambda r: r.record.paid_on,
            "CustomerRef": lambda r: id_key(r.record.customer_id),
            "TotalAmt": lambda r: r.record.amount if r.record.live else ZERO,
            "PaymentRefNum": lambda r: r.record.reference,
        }
    return {
        "DocNumber": lambda r: r.record.doc_number,
        "TxnDate": lambda r: r.record.issue_date,
        "CustomerRef": lambda r: id_key(r.record.customer_id),
        "TotalAmt": lambda r: r.record.total if r.record.live else ZERO,
        "Balance": lambda r: r.record.remaining,
    }


def payment_fingerprint(
    payment: SimPayment, carried: Carried, invoices: dict[str, SimInvoice], name: str
) -> tuple:
    """Everything the payment's JSON shows: a change re-renders it and bumps its SyncToken."""
    lines = tuple((a.invoice_id, a.amount) for a in payment.allocations)
    credits = tuple((credit.id, a.invoice_id, a.amount) for credit, a in carried)
    credits += tuple((journal, a.invoice_id, a.amount) for journal, a in payment.journals)
    numbers = tuple(_doc_number(invoices, key) for key, _ in lines)
    return (payment.customer_id, payment.paid_on, payment.currency, payment.amount, payment.status,
            payment.reference, payment.note, payment.updated_at, lines, credits, numbers, name)  # fmt: skip


def credit_fingerprint(credit: SimCredit, customer: SimCustomer | None) -> tuple:
    emails = tuple(customer.emails) if customer else ()
    name = customer.name if customer else ""
    return (credit.doc_number, credit.customer_id, credit.issue_date, credit.currency, credit.total,
            credit.remaining, credit.status, credit.updated_at, name, emails)  # fmt: skip


def payment_dict(
    payment: SimPayment,
    customer: SimCustomer | None,
    carried: Carried,
    invoices: dict[str, SimInvoice],
    meta: tuple[datetime, int, tzinfo, str],
) -> dict[str, Any]:
    """One Payment: invoice lines (money plus carried credit per invoice), then credit lines."""
    created, sync_token, tz, home_currency = meta
    voided = payment.status == "voided"
    data: dict[str, Any] = {
        "CustomerRef": {"value": payment.customer_id, "name": customer.name if customer else ""},
        "DepositToAccountRef": {"value": "35"},
        "TotalAmt": 0.0 if voided else float(payment.amount),
        "UnappliedAmt": 0.0 if voided else float(payment.unapplied),
        "ProcessPayment": False,
        "domain": "QBO",
        "sparse": False,
        "Id": payment.id,
        "SyncToken": str(sync_token),
        "MetaData": _meta(created, payment.updated_at, tz),
        "TxnDate": payment.paid_on.isoformat(),
        "CurrencyRef": {"value": payment.currency, "name": render.CURRENCY_NAMES.get(payment.currency, "")},
        "Line": [] if voided else _payment_lines(payment, carried, invoices),
    }
    if payment.reference:
        data["PaymentRefNum"] = payment.reference
    if payment.currency != home_currency:
        data["ExchangeRate"] = 1.0
    if voided:  # QuickBooks prepends "Voided" to the note there was
        data["PrivateNote"] = f"Voided - {payment.note}" if payment.note else "Voided"
    elif payment.note:
        data["PrivateNote"] = payment.note
    return data


def credit_memo_dict(
    credit: SimCredit, customer: SimCustomer | None, meta: tuple[datetime, int, tzinfo, str]
) -> dict[str, Any]:
    """One CreditMemo: `Balance` (and `RemainingCredit`) is the credit not yet applied."""
    created, sync_token, tz, home_currency = meta
    voided = credit.status == "voided"
    total = 0.0 if voided else float(credit.total)
    data: dict[str, Any] = {
        "RemainingCredit": float(credit.remaining),
        "domain": "QBO",
        "sparse": False,
        "Id": credit.id,
        "SyncToken": str(sync_token),
        "MetaData": _meta(created, credit.updated_at, tz),
        "CustomField": [],
        "DocNumber": credit.doc_number,
        "TxnDate": credit.issue_date.isoformat(),
        "CurrencyRef": {"value": credit.currency, "name": render.CURRENCY_NAMES.get(credit.currency, "")},
        "Line": [
            {
                "Id": "1",
                "LineNum": 1,
                "Description": "Credit",
                "Amount": total,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "1", "name": "Services"},
                    "TaxCodeRef": {"value": "NON"},
                },
            },
            {"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ],
        "TxnTaxDetail": {"TotalTax": 0},
        "CustomerRef": {"value": credit.customer_id, "name": customer.name if customer else ""},
        "TotalAmt": total,
        "ApplyTaxAfterDiscount": False,
        "PrintStatus": "NotSet",
        "EmailStatus": "NotSet",
        "Balance": float(credit.remaining),
    }
    if customer is not None and customer.emails:
        data["BillEmail"] = {"Address": render.primary_email(customer)}
    if credit.currency != home_currency:
        data["ExchangeRate"] = 1.0
    if voided:
        data["PrivateNote"] = "Voided"
    return data


def _payment_lines(
    payment: SimPayment, carried: Carried, invoices: dict[str, SimInvoice]
) -> list[dict[str, Any]]:
    to_invoice: dict[str, Decimal] = {}
    journals = payment.journals
    for allocation in [*(a for _, a in carried), *(a for _, a in journals), *payment.allocations]:
        to_invoice[allocation.invoice_id] = to_invoice.get(allocation.invoice_id, ZERO) + allocation.amount
    from_credit: dict[str, Decimal] = {}
    for credit, allocation in carried:
        from_credit[credit.id] = from_credit.get(credit.id, ZERO) + allocation.amount
    lines = [_line(key, "Invoice", amount, _doc_number(invoices, key)) for key, amount in to_invoice.items()]
    lines += [_line(key, "CreditMemo", amount, None) for key, amount in from_credit.items()]
    return lines + [_line(key, "JournalEntry", a.amount, None) for key, a in journals]


def _line(txn_id: str, txn_type: str, amount: Decimal, doc_number: str | None) -> dict[str, Any]:
    extras = [("txnId", txn_id)] + ([("txnReferenceNumber", doc_number)] if doc_number else [])
    return {
        "Amount": float(amount),
        "LineEx": {"any": [_name_value(name, value) for name, value in extras]},
        "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}],
    }


def _name_value(name: str, value: str) -> dict[str, Any]:
    return {
        "name": "{http://schema.intuit.com/finance/v3}NameValue",
        "declaredType": "com.intuit.schema.finance.v3.NameValue",
        "scope": "javax.xml.bind.JAXBElement$GlobalScope",
        "value": {"Name": name, "Value": value},
        "nil": False,
        "globalScope": True,
        "typeSubstituted": False,
    }


def _doc_number(invoices: dict[str, SimInvoice], invoice_id: str) -> str | None:
    invoice = invoices.get(invoice_id)
    return invoice.doc_number if invoice is not None else None


def _meta(created: datetime, updated: datetime, tz: tzinfo) -> dict[str, str]:
    return {"CreateTime": render.qbo_time(created, tz), "LastUpdatedTime": render.qbo_time(updated, tz)}
