"""Render the neutral company model as Xero Accounting API JSON.

Each record is rendered once to a JSON fragment (bytes) that the index caches, so a page is
only a join of pre-rendered fragments. Money is written from `Decimal` as exact JSON numbers,
dates in Xero's Microsoft JSON format `/Date(1573755038314+0000)/`, which xero-python parses
for both `date[ms-format]` (Date, DueDate: midnight UTC) and `datetime[ms-format]`
(UpdatedDateUTC) fields.
"""

from __future__ import annotations

import json
import uuid
import zlib
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from json.encoder import encode_basestring  # type: ignore[attr-defined]

from connectors.simulators.lines import Detail, decimal_text, detail
from connectors.simulators.model import SimCustomer, SimInvoice

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CENT = Decimal("0.01")
_ONE_MS = timedelta(milliseconds=1)

# The neutral model's status -> Xero's invoice Status ("open" depends on the balance).
_INVOICE_STATUS = {
    "draft": "DRAFT",
    "submitted": "SUBMITTED",
    "voided": "VOIDED",
    "deleted": "DELETED",
}


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _ONE_MS


def ms_date(ms: int) -> str:
    """Xero's `/Date(ms+0000)/` form of an epoch-milliseconds value."""
    return f"/Date({ms}+0000)/"


def day_ms(day: date) -> int:
    """Midnight UTC of `day` in epoch milliseconds (how Xero sends Date and DueDate)."""
    return to_ms(datetime.combine(day, time(), tzinfo=UTC))


def invoice_status(invoice: SimInvoice) -> str:
    """Xero's Status: live invoices are AUTHORISED, or PAID once the balance is zero."""
    if invoice.status == "open":
        return "PAID" if invoice.balance == 0 else "AUTHORISED"
    try:
        return _INVOICE_STATUS[invoice.status]
    except KeyError:
        raise ValueError(f"invoice {invoice.id}: unknown status {invoice.status!r}") from None


def contact_status(customer: SimCustomer) -> str:
    """ACTIVE, ARCHIVED, or GDPRREQUEST (a contact whose erasure was requested)."""
    if customer.gdpr_request:
        return "GDPRREQUEST"
    return "ACTIVE" if customer.active else "ARCHIVED"


def _s(value: str) -> str:
    """A JSON string literal (UTF-8 kept, quotes and controls escaped)."""
    return encode_basestring(value)


def _b(value: bool) -> str:
    return "true" if value else "false"


def _money(value: Decimal) -> str:
    return format(Decimal(value).quantize(_CENT), "f")


def _obj(pairs: list[tuple[str, str]]) -> str:
    """A JSON object from (key, already-encoded value) pairs, keeping their order."""
    return "{" + ",".join(f'"{key}":{value}' for key, value in pairs) + "}"


def _person(email: str, include_in_emails: bool) -> str:
    # The model keeps only the address; names are derived from "first.last@..." local parts.
    first, _, last = email.partition("@")[0].replace("_", ".").partition(".")
    return _obj(
        [
            ("FirstName", _s(first.capitalize())),
            ("LastName", _s(last.replace(".", " ").title())),
            ("EmailAddress", _s(email)),
            ("IncludeInEmails", _b(include_in_emails)),
        ]
    )


def render_contact(customer: SimCustomer) -> bytes:
    """One Contact as Xero returns it from GET /Contacts (fields arsync reads, and a few more)."""
    persons = ",".join(_person(email, include) for email, include in customer.contact_persons)
    return _obj(
        [
            ("ContactID", _s(customer.id)),
            ("ContactStatus", _s(contact_status(customer))),
            ("Name", _s(customer.name)),
            ("EmailAddress", _s(customer.emails[0] if customer.emails else "")),
            ("ContactPersons", f"[{persons}]"),
            ("IsSupplier", _b(customer.is_supplier)),
            ("IsCustomer", _b(customer.is_customer)),
            ("DefaultCurrency", _s(customer.currency)),
            ("Addresses", _addresses(customer)),
            ("Phones", _PHONES),
            ("ContactGroups", "[]"),
            ("PaymentTerms", '{"Sales":{"Day":30,"Type":"DAYSAFTERBILLDATE"}}'),
            ("UpdatedDateUTC", _s(ms_date(to_ms(customer.updated_at)))),
            ("HasAttachments", "false"),
            ("HasValidationErrors", "false"),
        ]
    ).encode()


_PHONES = (
    '[{"PhoneType":"DEFAULT","PhoneNumber":"","PhoneAreaCode":"","PhoneCountryCode":""},'
    '{"PhoneType":"MOBILE","PhoneNumber":"","PhoneAreaCode":"","PhoneCountryCode":""}]'
)


def _addresses(customer: SimCustomer) -> str:
    place = detail(customer.id, Decimal(0))
    city, region, postal = place.city
    return (
        f'[{{"AddressType":"POBOX","AddressLine1":"{place.street}","City":"{city}",'
        f'"Region":"{region}","PostalCode":"{postal}","Country":"","AttentionTo":""}},'
        '{"AddressType":"STREET","City":"","Region":"","PostalCode":"","Country":""}]'
    )


def render_invoice(invoice: SimInvoice, contact_name: str) -> bytes:
    """One Invoice as Xero returns it from a paged GET /Invoices (line items included);
    SentToContact only when true."""
    status = invoice_status(invoice)
    # Voided and deleted documents were never paid; a voided one owes nothing either.
    due = Decimal(0) if status == "VOIDED" else invoice.balance
    paid = Decimal(0) if status in ("VOIDED", "DELETED") else invoice.total - invoice.balance
    issued, issued_text = _day(invoice.issue_date)
    due_on, due_text = _day(invoice.due_date)
    lines = detail(invoice.id, invoice.total)
    total = _money(invoice.total)
    sent = '"SentToContact":true,' if invoice.email_sent else ""  # Xero omits false
    # One template rather than per-field encoding: 100,000 invoices render in seconds.
    return (
        f'{{"Type":{_s(invoice.type)},"InvoiceID":{_s(invoice.id)},'
        f'"InvoiceNumber":{_s(invoice.doc_number)},"Reference":{_s(_reference(lines))},'
        f'"Payments":{_payments(invoice, paid, issued)},"CreditNotes":[],"Prepayments":[],"Overpayments":[],'
        f'"Contact":{{"ContactID":{_s(invoice.customer_id)},"Name":{_s(contact_name)},'
        f'"Addresses":[],"Phones":[],"ContactGroups":[],"ContactPersons":[],"HasValidationErrors":false}},'
        f'"Date":"{issued}","DateString":"{issued_text}",'
        f'"DueDate":"{due_on}","DueDateString":"{due_text}",'
        f'"BrandingThemeID":"5d4dd402-c851-497e-aae1-9ff265c0d15a",'
        f'"Status":"{status}","LineAmountTypes":"Inclusive","LineItems":[{_line_items(lines)}],'
        f'"SubTotal":{decimal_text(lines.subtotal_cents)},"TotalTax":{decimal_text(lines.tax_cents)},'
        f'"Total":{total},"TotalDiscount":0.00,'
        f'"AmountDue":{_money(due)},"AmountPaid":{_money(paid)},"AmountCredited":0.00,'
        f'"CurrencyCode":{_s(invoice.currency)},"CurrencyRate":1.0000000000,'
        f'"IsDiscounted":false,"HasAttachments":false,"HasErrors":false,{sent}'
        f'"UpdatedDateUTC":"{ms_date(to_ms(invoice.updated_at))}"}}'
    ).encode()


def _reference(lines: Detail) -> str:
    return f"PO-{lines.seed % 99991}" if lines.seed % 3 else ""


def _line_items(lines: Detail) -> str:
    tax_type = "OUTPUT2" if lines.tax_cents else "NONE"
    return ",".join(
        f'{{"LineItemID":"{uuid.UUID(int=(lines.seed << 8) + line.number, version=4)}",'
        f'"ItemCode":"{line.item[0]}","Description":{_s(line.item[2])},'
        f'"UnitAmount":{decimal_text(line.unit_cents)},"TaxType":"{tax_type}",'
        f'"TaxAmount":0.00,"LineAmount":{decimal_text(line.cents)},"AccountCode":"200",'
        f'"Tracking":[],"Quantity":{line.quantity}.0000,"ValidationErrors":[]}}'
        for line in lines.lines
    )


def _payments(invoice: SimInvoice, paid: Decimal, issued: str) -> str:
    """A stub of the payment that settled what is paid (Xero lists payments on the invoice)."""
    if paid <= 0:
        return "[]"
    payment_id = uuid.UUID(int=zlib.crc32(invoice.id.encode()) << 32, version=4)
    return (
        f'[{{"PaymentID":"{payment_id}","Date":"{issued}","Amount":{_money(paid)},'
        f'"Reference":"","CurrencyRate":1.0000000000,"HasAccount":false,"HasValidationErrors":false}}]'
    )


@lru_cache(maxsize=4096)
def _day(day: date) -> tuple[str, str]:
    """(`/Date(ms+0000)/`, `YYYY-MM-DDT00:00:00`) of a calendar date; few distinct values."""
    return ms_date(day_ms(day)), f"{day.isoformat()}T00:00:00"


def contact_fields(customer: SimCustomer) -> dict[str, str | bool]:
    """The values a `where` clause on Contacts may compare against."""
    return {
        "contactid": customer.id,
        "contactstatus": contact_status(customer),
        "name": customer.name,
        "emailaddress": customer.emails[0] if customer.emails else "",
        "iscustomer": customer.is_customer,
        "issupplier": customer.is_supplier,
    }


def invoice_fields(invoice: SimInvoice) -> dict[str, str | bool]:
    """The values a `where` clause or `Statuses` on Invoices may compare against."""
    return {
        "invoiceid": invoice.id,
        "type": invoice.type,
        "status": invoice_status(invoice),
        "invoicenumber": invoice.doc_number,
        "contact.contactid": invoice.customer_id,
        "currencycode": invoice.currency,
        "senttocontact": invoice.email_sent,
    }


def envelope(collection: str, items: list[bytes], now_ms: int, pagination: dict[str, int] | None) -> bytes:
    """The response body around a list of pre-rendered records (Xero's list envelope)."""
    head = f'{{"Id":"{uuid.uuid4()}","Status":"OK","ProviderName":"arsync simulator",'
    head += f'"DateTimeUTC":"{ms_date(now_ms)}",'
    if pagination is not None:
        head += f'"pagination":{json.dumps(pagination, separators=(",", ":"))},'
    return b"".join([head.encode(), f'"{collection}":['.encode(), b",".join(items), b"]}"])
