"""QuickBooks Online JSON (and XML fault) shapes for the neutral simulator model.

Only the rendering knows QBO field names. Amounts are JSON numbers, as the real API sends
them; timestamps carry the company's UTC offset ("2024-03-01T09:12:00-08:00").
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

import msgspec

from connectors.simulators.lines import Detail, amount, detail
from connectors.simulators.model import SimCustomer, SimInvoice

CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
    "NZD": "New Zealand Dollar",
    "JPY": "Japanese Yen",
}
# Fixed rates keep the output deterministic; only the presence of ExchangeRate matters.
ZERO = Decimal("0.00")
_RATES = {"EUR": 1.08, "GBP": 1.27, "CAD": 0.74, "AUD": 0.66, "NZD": 0.61, "JPY": 0.0067}


_PAYMENT_FLAGS = {
    "AllowIPNPayment": False,
    "AllowOnlinePayment": False,
    "AllowOnlineCreditCardPayment": False,
    "AllowOnlineACHPayment": False,
}


def qbo_time(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def response_time(moment: datetime, tz: tzinfo) -> str:
    """The envelope's "time" field, with milliseconds as QBO sends it."""
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def _money(value: Decimal) -> float | msgspec.Raw:
    """A JSON number; a non-finite value (fault injection) as Python's json writes it."""
    number = float(value)
    if math.isfinite(number):
        return number
    return msgspec.Raw(b"NaN" if math.isnan(number) else b"Infinity" if number > 0 else b"-Infinity")


def _currency(code: str) -> dict[str, str]:
    return {"value": code, "name": CURRENCY_NAMES.get(code, code)}


def _meta(created: datetime, updated: datetime, tz: tzinfo) -> dict[str, str]:
    return {"CreateTime": qbo_time(created, tz), "LastUpdatedTime": qbo_time(updated, tz)}


def email_separator(customer_id: str) -> str:
    """Users type several addresses into PrimaryEmailAddr with "," or ";" (stable per id)."""
    return "; " if sum(map(ord, customer_id)) % 3 == 0 else ", "


def primary_email(customer: SimCustomer) -> str | None:
    """What QBO stores in PrimaryEmailAddr.Address: the addresses joined as typed."""
    if not customer.emails:
        return None
    return email_separator(customer.id).join(customer.emails)


def customer_dict(
    customer: SimCustomer, balance: Decimal, created: datetime, sync_token: int, tz: tzinfo
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Taxable": False,
        "Job": False,
        "BillWithParent": False,
        "Balance": _money(balance),
        "BalanceWithJobs": _money(balance),
        "CurrencyRef": _currency(customer.currency),
        "PreferredDeliveryMethod": "Email" if customer.emails else "Print",
        "IsProject": False,
        "domain": "QBO",
        "sparse": False,
        "Id": customer.id,
        "SyncToken": str(sync_token),
        "MetaData": _meta(created, customer.updated_at, tz),
        "FullyQualifiedName": customer.name,
        "CompanyName": customer.name,
        "DisplayName": customer.name,
        "PrintOnCheckName": customer.name,
        "Active": customer.active,
    }
    address = primary_email(customer)
    if address is not None:
        data["PrimaryEmailAddr"] = {"Address": address}
    return data | _customer_extras(customer)


def _customer_extras(customer: SimCustomer) -> dict[str, Any]:
    """What real Customer objects carry besides the fields arsync reads (addresses, terms)."""
    place = detail(customer.id, ZERO)
    seed = place.seed
    return {
        "BillAddr": _address(place, str(seed % 997)),
        "ShipAddr": _address(place, str(seed % 991)),
        "PrimaryPhone": {"FreeFormNumber": f"({200 + seed % 700}) 555-{seed % 10000:04d}"},
        "SalesTermRef": {"value": "3"},
        "PaymentMethodRef": {"value": "1"},
        "Notes": "",
        "DefaultTaxCodeRef": {"value": "2"},
        "GivenName": customer.name.split(" ")[0],
        "Title": "",
    }


def _address(place: Detail, address_id: str) -> dict[str, str]:
    city, region, postal = place.city
    return {
        "Id": address_id,
        "Line1": place.street,
        "City": city,
        "Country": "USA",
        "CountrySubDivisionCode": region,
        "PostalCode": postal,
        "Lat": "37.4238562",
        "Long": "-122.1141681",
    }


def invoice_dict(
    invoice: SimInvoice,
    customer: SimCustomer | None,
    created: datetime,
    sync_token: int,
    tz: tzinfo,
    home_currency: str,
) -> dict[str, Any]:
    voided = invoice.status == "voided"
    total = Decimal("0.00") if voided else invoice.total
    balance = Decimal("0.00") if voided else invoice.balance
    lines = detail(invoice.id, total)
    data: dict[str, Any] = {
        **_PAYMENT_FLAGS,
        "domain": "QBO",
        "sparse": False,
        "Id": invoice.id,
        "SyncToken": str(sync_token),
        "MetaData": _meta(created, invoice.updated_at, tz),
        "CustomField": _custom_fields(lines),
        "DocNumber": invoice.doc_number,
        "TxnDate": invoice.issue_date.isoformat(),
        "CurrencyRef": _currency(invoice.currency),
        "LinkedTxn": _linked(invoice, total, balance),
        "Line": _lines(lines),
        "TxnTaxDetail": _tax(lines),
        "CustomerRef": {"value": invoice.customer_id, "name": customer.name if customer else ""},
        "CustomerMemo": {"value": "Thank you for your business and have a great day!"},
        "BillAddr": _address(lines, str(lines.seed % 997)),
        "ShipAddr": _address(lines, str(lines.seed % 991)),
        "ShipFromAddr": {"Id": "1", "Line1": "2600 Marine Way", "Line2": "Mountain View, CA 94043"},
        "SalesTermRef": {"value": "3", "name": "Net 30"},
        "DueDate": invoice.due_date.isoformat(),
        "TotalAmt": _money(total),
        "HomeTotalAmt": _money(total),
        "Deposit": 0,
        "ApplyTaxAfterDiscount": False,
        "PrintStatus": "PrintComplete" if invoice.printed else "NotSet",
        "EmailStatus": _email_status(invoice, customer),
        "Balance": _money(balance),
    }
    if invoice.currency != home_currency:
        data["ExchangeRate"] = _RATES.get(invoice.currency, 1.0)
    if customer is not None and customer.emails:
        data["BillEmail"] = {"Address": primary_email(customer)}
    if voided:
        data["PrivateNote"] = "Voided"
    return data


def _email_status(invoice: SimInvoice, customer: SimCustomer | None) -> str:
    if invoice.email_sent:
        return "EmailSent"
    # "Send later" is ticked on some unsent invoices of customers that have an address.
    if customer is not None and customer.emails and sum(map(ord, invoice.id)) % 2 == 0:
        return "NeedToSend"
    return "NotSet"


def _linked(invoice: SimInvoice, total: Decimal, balance: Decimal) -> list[dict[str, str]]:
    if balance >= total:
        return []
    return [{"TxnId": f"9{invoice.id}", "TxnType": "Payment"}]


def _lines(lines: Detail) -> list[dict[str, Any]]:
    """Sales lines as QBO lists them, closed by the subtotal line."""
    out: list[dict[str, Any]] = [
        {
            "Id": str(line.number),
            "LineNum": line.number,
            "Description": line.item[2],
            "Amount": amount(line.cents),
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {
                "ItemRef": {"value": line.item[0], "name": line.item[1]},
                "UnitPrice": amount(line.unit_cents),
                "Qty": line.quantity,
                "ItemAccountRef": {"value": "79", "name": "Sales of Product Income"},
                "TaxCodeRef": {"value": "TAX" if lines.tax_cents else "NON"},
            },
        }
        for line in lines.lines
    ]
    subtotal = {
        "Amount": amount(lines.subtotal_cents),
        "DetailType": "SubTotalLineDetail",
        "SubTotalLineDetail": {},
    }
    out.append(subtotal)
    return out


def _tax(lines: Detail) -> dict[str, Any]:
    if not lines.tax_cents:
        return {"TotalTax": 0}
    return {
        "TxnTaxCodeRef": {"value": "2"},
        "TotalTax": amount(lines.tax_cents),
        "TaxLine": [
            {
                "Amount": amount(lines.tax_cents),
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": "3"},
                    "PercentBased": True,
                    "TaxPercent": 8.25,
                    "NetAmountTaxable": amount(lines.subtotal_cents),
                },
            }
        ],
    }


def _custom_fields(lines: Detail) -> list[dict[str, str]]:
    return [
        {"DefinitionId": "1", "Name": "Crew #", "Type": "StringType", "StringValue": str(lines.seed % 300)},
        {"DefinitionId": "2", "Name": "PO", "Type": "StringType", "StringValue": f"PO-{lines.seed % 99991}"},
    ]


def deleted_dict(record_id: str, updated: datetime, tz: tzinfo) -> dict[str, Any]:
    """How CDC reports a deleted entity: only its id, status and last update."""
    return {
        "domain": "QBO",
        "status": "Deleted",
        "Id": record_id,
        "MetaData": {"LastUpdatedTime": qbo_time(updated, tz)},
    }


def encode(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (msgspec: pre-rendering 100,000 rich invoices takes seconds, not a minute)."""
    return msgspec.json.encode(data)


def created_at(issue_date: date, updated: datetime, tz: tzinfo) -> datetime:
    """Invoices are created on their transaction date (09:00 local), never after an update."""
    return min(datetime.combine(issue_date, time(9), tz), updated)


# -- faults ----------------------------------------------------------------------------


def fault(kind: str, code: str, message: str, detail: str, now: str) -> dict[str, Any]:
    error = {"Message": message, "Detail": detail, "code": code}
    return {"Fault": {"Error": [error], "type": kind}, "time": now}


def auth_failed(now: str) -> dict[str, Any]:
    return fault(
        "AuthenticationFault",
        "3200",
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        "Token expired or invalid",
        now,
    )


def throttle_xml(now: str) -> bytes:
    """The 429 body QBO sends for throttling, XML even when JSON was asked for."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{now}">'
        '<Fault type="ThrottleExceeded"><Error code="003001">'
        "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
        "<Detail>The request limit was reached.</Detail>"
        "</Error></Fault></IntuitResponse>"
    ).encode()
