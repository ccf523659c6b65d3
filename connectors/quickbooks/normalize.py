"""QuickBooks Online JSON -> our records: the only code that knows QBO field names.

Input is the raw JSON object as parsed with `parse_float=Decimal` (the client asks the SDK
for exactly that), so money never passes through a float. A record we cannot read raises
`Malformed` with a reason; the caller turns it into a `Quarantined` and goes on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.currency import is_currency_code
from connectors.quickbooks.signals import quickbooks_deleted, quickbooks_sent, quickbooks_voided
from portal_rules.records import CustomerRecord, Entity, InvoiceRecord, Quarantined

ZERO = Decimal("0.00")
TABLES: dict[Entity, str] = {  # each entity's QuickBooks name (query table, JSON key)
    "customers": "Customer",
    "invoices": "Invoice",
    "payments": "Payment",
    "credits": "CreditMemo",
}
_DATE_SUFFIX = re.compile(r"^(?:Z|[+-]\d\d:\d\d)$")  # QBO sometimes appends an offset to a date


class Malformed(ValueError):
    """A QuickBooks record that cannot become one of our records; the message says why."""


def to_customer(raw: Mapping[str, Any]) -> CustomerRecord:
    """A QBO Customer (from a query or CDC) as a `CustomerRecord`."""
    raw = _mapping(raw)
    ref, updated = _id(raw), updated_at(raw)
    if quickbooks_deleted(raw.get("status")):  # CDC sends only Id, status and MetaData
        name = raw.get("DisplayName") if isinstance(raw.get("DisplayName"), str) else ""
        return CustomerRecord(ref, name, False, (), updated, deleted=True)
    name = raw.get("DisplayName")
    if not isinstance(name, str) or not name.strip():
        raise Malformed("missing DisplayName")
    active = raw.get("Active", True)  # QBO's default; every response spells it out
    if not isinstance(active, bool):
        raise Malformed(f"Active is not true/false: {active!r}")
    return CustomerRecord(ref, name, active, _emails(raw.get("PrimaryEmailAddr")), updated)


def to_invoice(raw: Mapping[str, Any], *, home_currency: str = "USD") -> InvoiceRecord:
    """A QBO Invoice (from a query or CDC) as an `InvoiceRecord`.

    `home_currency` stands in for a missing CurrencyRef (single-currency company files).
    """
    raw = _mapping(raw)
    ref, updated = _id(raw), updated_at(raw)
    if quickbooks_deleted(raw.get("status")):
        customer = _ref_value(raw.get("CustomerRef")) or ""
        return InvoiceRecord(
            ref, customer, None, None, None, home_currency, ZERO, ZERO, source_sent=False, deleted=True,
            updated_at=updated,
        )  # fmt: skip
    customer_ref = _ref_value(raw.get("CustomerRef"))
    if not customer_ref:
        raise Malformed("missing CustomerRef")
    total, balance = _money(raw, "TotalAmt"), _money(raw, "Balance")
    if balance < ZERO:  # QuickBooks never sends one (money owed back is a credit memo)
        raise Malformed(f"negative Balance {balance}")
    return InvoiceRecord(
        ref=ref,
        customer_ref=customer_ref,
        doc_number=_text(raw.get("DocNumber")),
        issue_date=_date(raw, "TxnDate"),
        due_date=_date(raw, "DueDate"),
        currency=currency_of(raw, home_currency),
        total=total,
        balance=balance,
        source_sent=quickbooks_sent(raw.get("EmailStatus"), raw.get("PrintStatus")),
        voided=quickbooks_voided(_text(raw.get("PrivateNote")), total, balance),
        updated_at=updated,
    )


def normalize_all(
    entity: Entity, rows: Iterable[Any], home_currency: str
) -> tuple[list[Any], list[Quarantined]]:
    """Normalize a page's rows; the unreadable ones are quarantined with their id and reason."""
    from connectors.quickbooks.normalize_ledger import to_credit, to_payment  # it builds on this module

    convert: dict[str, Any] = {
        "customers": lambda raw: to_customer(raw),
        "invoices": lambda raw: to_invoice(raw, home_currency=home_currency),
        "payments": lambda raw: to_payment(raw, home_currency=home_currency),
        "credits": lambda raw: to_credit(raw, home_currency=home_currency),
    }
    to_record = convert[entity]
    records: list[Any] = []
    quarantined: list[Quarantined] = []
    for raw in rows:
        try:
            records.append(to_record(raw))
        except Malformed as exc:
            quarantined.append(Quarantined(entity, ref_of(raw), str(exc)))
    return records, quarantined


def ref_of(raw: Any) -> str | None:
    """The record's Id when it has a usable one (for quarantine reports)."""
    try:
        return _id(_mapping(raw))
    except Malformed:
        return None


def updated_at(raw: Mapping[str, Any]) -> datetime | None:
    """MetaData.LastUpdatedTime as an aware UTC datetime (None when absent)."""
    meta = raw.get("MetaData")
    value = meta.get("LastUpdatedTime") if meta.__class__ is dict or isinstance(meta, Mapping) else None
    if value is None:
        return None
    return parse_time(value, "MetaData.LastUpdatedTime")


def parse_time(value: Any, field: str) -> datetime:
    """A QBO date-time ("2025-06-02T08:30:00-07:00") as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Malformed(f"bad {field} {value!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is past the calendar in UTC
        raise Malformed(f"bad {field} {value!r}") from None


def _mapping(raw: Any) -> Mapping[str, Any]:
    if raw.__class__ is dict:  # nearly always: skip the ABC check
        return raw
    if not isinstance(raw, Mapping):
        raise Malformed(f"not a JSON object: {type(raw).__name__}")
    return raw


def _id(raw: Mapping[str, Any]) -> str:
    value = raw.get("Id")
    if value.__class__ is str and (ref := value.strip()):
        return ref
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise Malformed("missing Id")
    return str(value).strip()


def currency_of(raw: Mapping[str, Any], home_currency: str) -> str:
    """The record's CurrencyRef code, or `home_currency` when it names none (single-currency
    company files leave it out). A value that is no currency code is the record's fault."""
    ref = raw.get("CurrencyRef")
    if ref is None:
        return home_currency
    if not isinstance(ref, Mapping):
        raise Malformed(f"CurrencyRef is not a reference: {ref!r}")
    value = ref.get("value")
    if value is None or (isinstance(value, str) and not value.strip()):
        return home_currency
    if not isinstance(value, str) or not is_currency_code(value.strip()):
        raise Malformed(f"CurrencyRef is not a currency code: {value!r}")
    return value.strip()


def _ref_value(ref: Any) -> str | None:
    """The `value` of a QBO reference object ({"value": "12", "name": "..."})."""
    if ref.__class__ is dict and (value := ref.get("value")).__class__ is str:
        return value.strip() or None
    value = ref.get("value") if isinstance(ref, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return None


def _emails(address: Any) -> tuple[str, ...]:
    # Passed through as spelled: several addresses may share the field ("a@x; b@y"); the
    # store splits them (portal_rules.contacts.customer_emails).
    value = address.get("Address") if isinstance(address, Mapping) else None
    return (value,) if isinstance(value, str) and value.strip() else ()


def _money(raw: Mapping[str, Any], field: str) -> Decimal:
    value = raw.get(field)
    if value.__class__ is Decimal and value.is_finite():  # as the JSON parsers give it
        return value
    if value is None:
        raise Malformed(f"missing {field}")
    if isinstance(value, bool):
        raise Malformed(f"non-numeric {field} {value!r}")
    if isinstance(value, float):  # only NaN/Infinity get here when parsed with Decimal
        if not math.isfinite(value):
            raise Malformed(f"non-numeric {field} {value!r}")
        value = repr(value)
    try:
        amount = Decimal(value) if isinstance(value, Decimal | int | str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise Malformed(f"non-numeric {field} {value!r}")
    return amount


def _date(raw: Mapping[str, Any], field: str) -> date | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        head, tail = value[:10], value[10:]
        if not tail or _DATE_SUFFIX.match(tail):
            try:
                return date.fromisoformat(head)
            except ValueError:
                pass
    raise Malformed(f"bad {field} {value!r}")
