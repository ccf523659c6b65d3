"""Fast decoding of QuickBooks answers: msgspec straight from the body, unused fields skipped.

A real invoice is 2-3 KB of JSON (lines, tax detail, addresses, custom fields) of which
arsync reads a dozen fields. The structs below name only those; msgspec skips the rest
without building them, and turns every JSON float into a `Decimal` from its exact text
(`float_hook`), as `json.loads(..., parse_float=Decimal)` does. Payments and credit memos
likewise: a payment's lines keep only `Amount` and `LinkedTxn` (each line's `LineEx` is
most of its bytes). The result is the envelope the rest of the connector already reads
(`QueryResponse`/`CDCResponse`/`BatchItemResponse`, `time`), holding slim record dicts
with the same values the standard parser would give: normalization, paging and
quarantine stay one code path (`normalize.py`, `normalize_ledger.py`, `pull.py`).

Anything the structs do not describe (a fault, a record that is not an object, a NaN
literal, a number too large for msgspec) is not decided here: `decode` returns None and
the caller parses the body the SDK's way, so odd answers behave exactly as before.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from connectors.structs import plain

_CUSTOMER_FIELDS = ("Id", "DisplayName", "Active", "PrimaryEmailAddr", "MetaData", "status")
_INVOICE_FIELDS = (
    "Id", "CustomerRef", "TotalAmt", "Balance", "DocNumber", "TxnDate", "DueDate", "CurrencyRef",
    "EmailStatus", "PrintStatus", "PrivateNote", "MetaData", "status",
)  # fmt: skip


class _Row(Struct):
    """One record, only the fields `normalize.py` reads. `Any`: values are exactly what the
    standard parser would give (int, Decimal, str, dict, list...); normalize judges them."""

    Id: Any = UNSET
    DisplayName: Any = UNSET
    Active: Any = UNSET
    PrimaryEmailAddr: Any = UNSET
    CustomerRef: Any = UNSET
    TotalAmt: Any = UNSET
    Balance: Any = UNSET
    DocNumber: Any = UNSET
    TxnDate: Any = UNSET
    DueDate: Any = UNSET
    CurrencyRef: Any = UNSET
    EmailStatus: Any = UNSET
    PrintStatus: Any = UNSET
    PrivateNote: Any = UNSET
    MetaData: Any = UNSET
    status: Any = UNSET


class _Line(Struct):
    """A payment's line: its amount and the transactions it links (LineEx and the rest skipped)."""

    Amount: Any = UNSET
    LinkedTxn: Any = UNSET


class _Payment(Struct):
    """A Payment, only the fields `normalize_ledger.to_payment` reads."""

    Id: Any = UNSET
    CustomerRef: Any = UNSET
    TotalAmt: Any = UNSET
    UnappliedAmt: Any = UNSET
    TxnDate: Any = UNSET
    CurrencyRef: Any = UNSET
    PrivateNote: Any = UNSET
    PaymentRefNum: Any = UNSET
    MetaData: Any = UNSET
    status: Any = UNSET
    Line: list[_Line] | UnsetType = UNSET


class _CreditMemo(Struct):
    """A CreditMemo, only the fields `normalize_ledger.to_credit` reads (not its lines)."""

    Id: Any = UNSET
    CustomerRef: Any = UNSET
    TotalAmt: Any = UNSET
    Balance: Any = UNSET
    RemainingCredit: Any = UNSET
    DocNumber: Any = UNSET
    TxnDate: Any = UNSET
    CurrencyRef: Any = UNSET
    PrivateNote: Any = UNSET
    MetaData: Any = UNSET
    status: Any = UNSET


class _Rows(Struct):
    Customer: list[_Row] | UnsetType = UNSET
    Invoice: list[_Row] | UnsetType = UNSET
    Payment: list[_Payment] | UnsetType = UNSET
    CreditMemo: list[_CreditMemo] | UnsetType = UNSET
    totalCount: Any = UNSET  # the answer to SELECT COUNT(*)


class _CdcPart(Struct):
    QueryResponse: list[_Rows]


class _BatchItem(Struct):
    bId: Any = UNSET
    QueryResponse: _Rows | UnsetType = UNSET
    Fault: Any = UNSET


class _Envelope(Struct):
    QueryResponse: _Rows | UnsetType = UNSET
    CDCResponse: list[_CdcPart] | UnsetType = UNSET
    BatchItemResponse: list[_BatchItem] | UnsetType = UNSET
    Fault: Any = UNSET
    time: Any = UNSET


_DECODER = msgspec.json.Decoder(_Envelope, float_hook=Decimal)


def decode(body: bytes) -> dict[str, Any] | None:
    """The answer as the envelope dict `pull.py` reads, or None when only the standard
    parser and the SDK's checks can say what it is (a fault, an unexpected shape)."""
    try:
        envelope = _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if envelope.Fault is not UNSET:
        return None
    out: dict[str, Any] = {}
    if envelope.QueryResponse is not UNSET:
        out["QueryResponse"] = _rows(envelope.QueryResponse)
    if envelope.CDCResponse is not UNSET:
        parts = [
            {"QueryResponse": [_rows(rows) for rows in part.QueryResponse]} for part in envelope.CDCResponse
        ]
        out["CDCResponse"] = parts
    if envelope.BatchItemResponse is not UNSET:
        out["BatchItemResponse"] = [_batch_item(item) for item in envelope.BatchItemResponse]
    if envelope.time is not UNSET:
        out["time"] = envelope.time
    return out


def _batch_item(item: _BatchItem) -> dict[str, Any]:
    """One operation's answer; a fault stays in its item (the others may have succeeded)."""
    out: dict[str, Any] = {"bId": item.bId}
    if item.QueryResponse is not UNSET:
        out["QueryResponse"] = _rows(item.QueryResponse)
    if item.Fault is not UNSET:
        out["Fault"] = item.Fault
    return out


def _rows(rows: _Rows) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rows.totalCount is not UNSET:
        out["totalCount"] = rows.totalCount
    if rows.Customer is not UNSET:
        out["Customer"] = [_slim(row, _CUSTOMER_FIELDS) for row in rows.Customer]
    if rows.Invoice is not UNSET:
        out["Invoice"] = [_slim(row, _INVOICE_FIELDS) for row in rows.Invoice]
    if rows.Payment is not UNSET:
        out["Payment"] = plain(rows.Payment)
    if rows.CreditMemo is not UNSET:
        out["CreditMemo"] = plain(rows.CreditMemo)
    return out


def _slim(row: _Row, fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields the row had (absent ones stay absent: `raw.get` must see None for them)."""
    return {name: value for name in fields if (value := getattr(row, name)) is not UNSET}
