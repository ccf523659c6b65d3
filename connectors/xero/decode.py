"""Fast decoding of Xero list answers: msgspec straight from the body, unused fields skipped.

A paged GET /Invoices carries line items, payments, credit notes and the contact's details:
about 2 KB per invoice, of which arsync reads a dozen fields (payments and credit notes
likewise: only what `normalize_ledger.py` reads; parsed whole, 75 pages of payments held
about 40 MB more at the peak of a 100k-invoice pull). The structs below name only
those; msgspec skips the rest without building it and turns every JSON float into a
`Decimal` from its exact text (`float_hook`), as `json.loads(..., parse_float=Decimal)`
does. The records come out as slim dicts holding the same values the standard parser
would give, so `normalize.py` and `pull.py` stay the one code path.

An answer the structs do not describe (no list, a record that is not an object, a NaN
literal) is not decided here: `listing` returns None and the caller parses the body the
standard way (`normalize.parse_answer`), so odd answers behave exactly as before. The
envelope's `DateTimeUTC` is read either way (see `normalize.served_at`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from connectors.structs import plain
from connectors.xero.normalize import Answer, Paging, served_at
from portal_rules.records import Entity

_CONTACT_FIELDS = (
    "ContactID", "Name", "ContactStatus", "EmailAddress", "ContactPersons", "IsCustomer", "UpdatedDateUTC",
)  # fmt: skip
_INVOICE_FIELDS = (
    "InvoiceID", "Type", "Status", "Contact", "InvoiceNumber", "Date", "DueDate", "CurrencyCode", "Total",
    "AmountDue", "SentToContact", "UpdatedDateUTC",
)  # fmt: skip


class _ContactRef(Struct):
    """An invoice's contact: only its id is read (Xero sends addresses, phones, groups...)."""

    ContactID: Any = UNSET


class _Record(Struct):
    """A contact or an invoice, only the fields `normalize.py` reads. `Any`: values are
    exactly what the standard parser gives (int, Decimal, str, bool...); normalize judges."""

    ContactID: Any = UNSET
    Name: Any = UNSET
    ContactStatus: Any = UNSET
    EmailAddress: Any = UNSET
    ContactPersons: Any = UNSET
    IsCustomer: Any = UNSET
    InvoiceID: Any = UNSET
    Type: Any = UNSET
    Status: Any = UNSET
    Contact: _ContactRef | UnsetType = UNSET
    InvoiceNumber: Any = UNSET
    Date: Any = UNSET
    DueDate: Any = UNSET
    CurrencyCode: Any = UNSET
    Total: Any = UNSET
    AmountDue: Any = UNSET
    SentToContact: Any = UNSET
    UpdatedDateUTC: Any = UNSET


class _InvoiceRef(Struct):
    """The invoice a payment or a credit allocation names: its id, contact and currency."""

    InvoiceID: Any = UNSET
    CurrencyCode: Any = UNSET
    Contact: _ContactRef | UnsetType = UNSET


class _Allocation(Struct):
    IsDeleted: Any = UNSET
    Invoice: _InvoiceRef | UnsetType = UNSET
    Amount: Any = UNSET
    Date: Any = UNSET


class _Payment(Struct):
    """A payment, only the fields `normalize_ledger.to_payment` reads."""

    PaymentID: Any = UNSET
    PaymentType: Any = UNSET
    Status: Any = UNSET
    Invoice: _InvoiceRef | UnsetType = UNSET
    Amount: Any = UNSET
    Date: Any = UNSET
    Reference: Any = UNSET
    UpdatedDateUTC: Any = UNSET


class _Credit(Struct):
    """A credit note, only the fields `normalize_ledger.to_credit` reads."""

    CreditNoteID: Any = UNSET
    Type: Any = UNSET
    Status: Any = UNSET
    Contact: _ContactRef | UnsetType = UNSET
    CreditNoteNumber: Any = UNSET
    Date: Any = UNSET
    CurrencyCode: Any = UNSET
    Total: Any = UNSET
    RemainingCredit: Any = UNSET
    UpdatedDateUTC: Any = UNSET
    Allocations: list[_Allocation] | UnsetType = UNSET


class _Pagination(Struct):
    pageCount: Any = UNSET
    itemCount: Any = UNSET


class _Envelope(Struct):
    DateTimeUTC: Any = UNSET
    Contacts: list[_Record] | UnsetType = UNSET
    Invoices: list[_Record] | UnsetType = UNSET
    Payments: list[_Payment] | UnsetType = UNSET
    CreditNotes: list[_Credit] | UnsetType = UNSET
    pagination: _Pagination | UnsetType = UNSET


_DECODER = msgspec.json.Decoder(_Envelope, float_hook=Decimal)


def listing(body: bytes, entity: Entity) -> Answer | None:
    """The answer as `normalize.parse_answer` gives it, records as slim dicts, or None
    when only the standard parser can say what the answer is."""
    try:
        envelope = _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    pagination = envelope.pagination
    paging = Paging() if pagination is UNSET else Paging.read(pagination.pageCount, pagination.itemCount)
    served = served_at(envelope.DateTimeUTC)
    if entity in ("payments", "credits"):
        ledger = envelope.Payments if entity == "payments" else envelope.CreditNotes
        return None if ledger is UNSET else Answer([plain(row) for row in ledger], paging, served)
    if entity == "customers":
        rows, fields = envelope.Contacts, _CONTACT_FIELDS
    else:
        rows, fields = envelope.Invoices, _INVOICE_FIELDS
    if rows is UNSET:
        return None
    return Answer([_slim(row, fields) for row in rows], paging, served)


def _slim(row: _Record, fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields the record had (absent ones stay absent: `raw.get` must see None for them)."""
    out = {name: value for name in fields if (value := getattr(row, name)) is not UNSET}
    contact = out.get("Contact")
    if contact is not None:
        out["Contact"] = {} if contact.ContactID is UNSET else {"ContactID": contact.ContactID}
    return out
