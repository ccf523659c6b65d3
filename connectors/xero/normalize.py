"""Xero JSON -> our records. The only module that knows Xero's field names.

Bodies are parsed with `json.loads(..., parse_float=Decimal)` (never the SDK models), so
money stays exact and one bad record is quarantined instead of failing its whole page.
Dates arrive in Microsoft JSON form `/Date(1573755038314+0000)/`: milliseconds since the
epoch in UTC (the offset only says which zone the author was in).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from connectors.currency import is_currency_code
from connectors.xero.signals import (
    LiveFlags,
    xero_contact_active,
    xero_erasure_requested,
    xero_flags,
    xero_importable,
    xero_sent,
)
from portal_rules.records import CustomerRecord, Entity, InvoiceRecord

SALES_INVOICES = 'Type=="ACCREC"'  # the `where` filter: bills (ACCPAY) are never imported
_ENVELOPE: dict[Entity, str] = {
    "customers": "Contacts",
    "invoices": "Invoices",
    "payments": "Payments",
    "credits": "CreditNotes",
}
_REF: dict[Entity, str] = {
    "customers": "ContactID",
    "invoices": "InvoiceID",
    "payments": "PaymentID",
    "credits": "CreditNoteID",
}
# Listings are paged by page number in the order of their record's id, which never changes
# (Xero's docs list each id among the "optimised ordering" fields). In UpdatedDateUTC order
# a record changed mid-pass moved to the end and pushed the record at the next page
# boundary off both pages. In id order a pass's filtered listing only grows (UpdatedDateUTC
# only increases; deleted, voided and archived records stay listed with their status), so
# a boundary record may be read twice, never skipped.
ORDER: dict[Entity, str] = {entity: f"{field} ASC" for entity, field in _REF.items()}
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = Decimal(0)


class MalformedRecord(ValueError):
    """One record cannot be normalized; the message is the quarantine reason."""


class MalformedBody(ValueError):
    """The response is not a Xero list envelope (truncated, wrong shape): worth a retry."""


class Paging(NamedTuple):
    """A list response's `pagination`: pages and records of the whole listing (None: absent)."""

    page_count: int | None = None
    item_count: int | None = None

    @classmethod
    def read(cls, page_count: Any, item_count: Any) -> Paging:
        return cls(_count(page_count), _count(item_count))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Answer(NamedTuple):
    """A list response: its records, its pagination, and Xero's clock when it answered."""

    items: list[Any]
    paging: Paging
    served: datetime | None  # the envelope's DateTimeUTC; None when absent or unreadable


def parse_answer(body: bytes, entity: Entity) -> Answer:
    """A list response parsed the standard way (the fallback of `decode.listing`)."""
    data = json.loads(body, parse_float=Decimal)
    items = data.get(_ENVELOPE[entity]) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise MalformedBody(f"response has no {_ENVELOPE[entity]} list")
    pagination = data.get("pagination")
    paging = Paging()
    if isinstance(pagination, dict):
        paging = Paging.read(pagination.get("pageCount"), pagination.get("itemCount"))
    return Answer(items, paging, served_at(data.get("DateTimeUTC")))


def parse_listing(body: bytes, entity: Entity) -> tuple[list[Any], Paging]:
    """The records of a list response and its pagination (`parse_answer` without the clock)."""
    answer = parse_answer(body, entity)
    return answer.items, answer.paging


def served_at(value: Any) -> datetime | None:
    """An envelope's `DateTimeUTC` (`/Date(1439434356790)/`) as an aware UTC datetime; None
    when it is missing or not a Xero date."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except (ValueError, OverflowError):
        return None


def record_ref(raw: Any, entity: Entity) -> str | None:
    """The record's Xero id when it has a usable one (for quarantine reports)."""
    value = raw.get(_REF[entity]) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value else None


def is_customer_flag(raw: dict) -> bool:
    """Xero's `IsCustomer` (set by Xero once a contact has a sales invoice)."""
    return raw.get("IsCustomer") is True


def to_customer(raw: Any) -> CustomerRecord:
    """A Contact as a CustomerRecord; raises MalformedRecord with the reason.

    A contact whose erasure was requested (GDPRREQUEST) comes without any email address:
    nothing downstream can then invite or remind it, whatever the company's settings, and
    its addresses are not stored.
    """
    contact = _mapping(raw, "Contact")
    persons = contact.get("ContactPersons") or []
    if not isinstance(persons, list) or not all(isinstance(p, dict) for p in persons):
        raise MalformedRecord("ContactPersons is not a list of objects")
    status = _optional_text(contact, "ContactStatus")
    emails = [contact.get("EmailAddress")]
    emails += [p.get("EmailAddress") for p in persons if p.get("IncludeInEmails") is True]
    return CustomerRecord(
        ref=_text(contact, "ContactID"),
        display_name=_text(contact, "Name"),
        active=xero_contact_active(status),
        emails=() if xero_erasure_requested(status) else _unique_emails(emails),
        updated_at=_optional(contact, "UpdatedDateUTC", parse_datetime),
    )


def to_invoice(raw: Any) -> InvoiceRecord | None:
    """An Invoice as an InvoiceRecord, None for a bill (ACCPAY); raises MalformedRecord, also
    for a Type that is neither (missing or unknown: quarantined, never dropped unseen)."""
    invoice = _mapping(raw, "Invoice")
    kind = _optional_text(invoice, "Type")
    if not kind:
        raise MalformedRecord("missing Type")
    if kind.upper() == "ACCPAY":
        return None
    if not xero_importable(kind):
        raise MalformedRecord(f"Type is neither ACCREC nor ACCPAY: {kind!r}")
    flags = live_flags(invoice, "invoice")
    return InvoiceRecord(
        ref=_text(invoice, "InvoiceID"),
        customer_ref=_text(_mapping(invoice.get("Contact"), "Contact"), "ContactID", "Contact.ContactID"),
        doc_number=_optional_text(invoice, "InvoiceNumber") or None,
        issue_date=_optional(invoice, "Date", parse_date),
        due_date=_optional(invoice, "DueDate", parse_date),
        currency=currency_code(invoice, "CurrencyCode"),
        total=_not_negative(invoice, "Total"),
        balance=_not_negative(invoice, "AmountDue"),
        source_sent=xero_sent(invoice.get("SentToContact")),
        voided=flags.voided,
        deleted=flags.deleted,
        draft=flags.draft,
        updated_at=_optional(invoice, "UpdatedDateUTC", parse_datetime),
    )


def parse_datetime(value: str) -> datetime:
    """`/Date(ms+zzzz)/` or ISO 8601 (naive = UTC) as an aware UTC datetime."""
    match = _MS_DATE.match(value.strip())
    if match:
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_date(value: str) -> date:
    """A Xero calendar date (sent as midnight UTC of that day)."""
    return parse_datetime(value).date()


def _mapping(raw: Any, what: str) -> dict:
    if not isinstance(raw, dict):
        raise MalformedRecord(f"{what} is not a JSON object")
    return raw


def _text(raw: dict, key: str, label: str | None = None) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecord(f"missing {label or key}")
    return value


def currency_code(raw: dict, key: str, label: str | None = None) -> str:
    """The record's currency: required, and a currency code (else the record is quarantined)."""
    value = _text(raw, key, label)
    if not is_currency_code(value):
        raise MalformedRecord(f"{label or key} is not a currency code: {value!r}")
    return value


def live_flags(raw: dict, what: str) -> LiveFlags:
    """The record's Status as liveness flags; a status Xero does not document quarantines it."""
    status = _optional_text(raw, "Status")
    flags = xero_flags(status)
    if flags is None:
        raise MalformedRecord(f"unknown {what} Status {status!r}")
    return flags


def _optional_text(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedRecord(f"{key} is not text: {value!r}")
    return value


def _optional(raw: dict, key: str, parse: Callable[[str], Any]) -> Any:
    value = raw.get(key)
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except (TypeError, ValueError, AttributeError, OverflowError):
        raise MalformedRecord(f"{key} is not a Xero date: {value!r}") from None


def _money(raw: dict, key: str) -> Decimal:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise MalformedRecord(f"{key} is not a number: {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise MalformedRecord(f"{key} is not a number: {value!r}") from None
    if not amount.is_finite():
        raise MalformedRecord(f"{key} is not a number: {value!r}")
    return amount


def _not_negative(raw: dict, key: str) -> Decimal:
    """An amount Xero never sends below zero: an invoice's Total or AmountDue (money owed back
    is a credit note or an overpayment, objects of their own), a payment's, a credit note's
    or its allocations'. A negative one is quarantined rather than counted against the
    customer's balance or statement."""
    amount = _money(raw, key)
    if amount < _ZERO:  # a Decimal constant: half the cost of comparing with the int 0
        raise MalformedRecord(f"{key} is negative: {amount}")
    return amount


def _unique_emails(candidates: list[Any]) -> tuple[str, ...]:
    """Non-empty addresses, primary first, without case-insensitive repeats."""
    kept: dict[str, str] = {}
    for email in candidates:
        if isinstance(email, str) and email.strip():
            kept.setdefault(email.strip().lower(), email)
    return tuple(kept.values())
