"""One page of a full QuickBooks listing, read straight from its raw body.

`listed` reads a page of the usual shape straight into records (`typed`); any other it
decodes (`decode`) and normalizes row by row (`normalize_all`), with its quarantine. All a
full pull fetched ahead needs of a page is its records, its quarantined rows and how many
rows it held (a short page ends its entity). It is a pure function of the body, so it runs
in the fetching thread or, for a large pull, in the page decoder's process
(`connectors.offload`); only this module, typed, decode and normalize load there, not the SDK.

An answer it cannot read (a fault, another shape) is None: the caller gives it to the
SDK's own checks, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from connectors.quickbooks.decode import decode
from connectors.quickbooks.normalize import TABLES, normalize_all
from connectors.quickbooks.typed import typed_fields
from portal_rules.records import RECORD_TYPES, Entity, Quarantined


@dataclass(frozen=True, slots=True)
class Listed:
    records: list[Any]  # of the entity's record type (in `listed_fields`, maybe as field dicts)
    quarantined: list[Quarantined]
    rows: int  # rows in the answer, quarantined ones included
    first: str | None = None  # the first row's Id and the last's: page boundaries (`shift`)
    last: str | None = None


def listed(body: bytes, entity: Entity, home_currency: str) -> Listed | None:
    """The page's records, or None when only the SDK's checks can say what the answer is."""
    fields = typed_fields(body, entity, home_currency)
    if fields is None:
        return _general(body, entity, home_currency)
    records = msgspec.convert(fields, list[RECORD_TYPES[entity]])  # type: ignore[valid-type]
    return Listed(records, [], len(records), *_field_ends(fields))


def listed_fields(body: bytes, entity: Entity, home_currency: str) -> Listed | None:
    """`listed`, but a page of the usual shape holds its records as field dicts: what the page
    decoder sends back (msgpack writes a record and its dict alike, for a third of the cost,
    and the sync's side reads them as records), without building records it would only write."""
    fields = typed_fields(body, entity, home_currency)
    if fields is None:
        return _general(body, entity, home_currency)
    return Listed(fields, [], len(fields), *_field_ends(fields))


def _general(body: bytes, entity: Entity, home_currency: str) -> Listed | None:
    """A page of any shape, decoded and normalized row by row, its unreadable rows quarantined."""
    answer = decode(body)
    response = answer.get("QueryResponse") if answer is not None else None
    rows = response.get(TABLES[entity], []) if isinstance(response, dict) else None
    if not isinstance(rows, list):
        return None
    records, quarantined = normalize_all(entity, rows, home_currency)
    return Listed(records, quarantined, len(rows), *ends(rows))


def ends(rows: list[Any]) -> tuple[str | None, str | None]:
    """The Ids of a page's first and last raw rows, as text (None: no row, or no Id)."""
    return _ends([row_id(row) for row in rows[:1] + rows[-1:]])


def _field_ends(fields: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """`ends` of a page read as field dicts (their `ref` is the row's Id)."""
    return _ends([field["ref"] for field in fields[:1] + fields[-1:]])


def row_id(row: Any) -> str | None:
    """A raw row's Id, as text (None: not a row, or no Id)."""
    value = row.get("Id") if isinstance(row, dict) else None
    return None if value is None else str(value)


def _ends(ids: list[str | None]) -> tuple[str | None, str | None]:
    """(first, last) of a page from its first and last rows' Ids (an empty page: neither)."""
    return (ids[0], ids[-1]) if ids else (None, None)
