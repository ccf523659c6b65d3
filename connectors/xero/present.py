"""Which records Xero still holds, asked by id: deletions of a full pull are confirmed.

A full pull pages in `UpdatedDateUTC` order; a record changed mid-pull moves to the end,
shifting the records behind it up by one, so the record that crossed a page boundary is
never returned, though nothing happened to it. Before the store marks a record deleted
because a full pull did not return it, it asks here, `ids_per_request` ids per request
(`IDs=` on Contacts and Invoices, a `where` of `PaymentID==guid(...) OR ...` on Payments
and CreditNotes, which take no `IDs`). Xero keeps deleted invoices, payments and credit
notes with status DELETED: those are not present. A record Xero returns but arsync cannot
normalize is present (it is quarantined by the pulls, never deleted on a guess).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from connectors.xero.client import XeroClient
from connectors.xero.normalize import MalformedRecord, record_ref, to_invoice
from connectors.xero.normalize_ledger import to_credit, to_payment
from portal_rules.records import ENTITIES

_GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
_NORMALIZE: dict[str, Callable[[Any], Any]] = {
    "invoices": to_invoice,
    "payments": to_payment,
    "credits": to_credit,
}


def confirm_present(client: XeroClient, entity: str, refs: Sequence[str]) -> tuple[set[str], int]:
    """The refs of `entity` Xero still has (not DELETED), and the HTTP requests it took.

    A ref that is not a GUID cannot be a Xero id: it is absent without a request.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}: one of {', '.join(ENTITIES)}")
    wanted = [ref for ref in dict.fromkeys(refs) if _GUID.match(ref)]
    by_lower = {ref.lower(): ref for ref in wanted}  # Xero may answer in another case
    present: set[str] = set()
    calls, size = 0, client.options.ids_per_request
    for start in range(0, len(wanted), size):
        listing = client.by_ids(entity, wanted[start : start + size])  # type: ignore[arg-type]
        calls += listing.calls
        for raw in listing.items:
            ref = record_ref(raw, entity)  # type: ignore[arg-type]
            if ref is not None and ref.lower() in by_lower and _live(entity, raw):
                present.add(by_lower[ref.lower()])
    return present, calls


def _live(entity: str, raw: Any) -> bool:
    """Not deleted in Xero (contacts are archived, never deleted)."""
    normalize = _NORMALIZE.get(entity)
    if normalize is None:
        return True
    try:
        record = normalize(raw)
    except MalformedRecord:
        return True
    return record is None or not record.deleted
