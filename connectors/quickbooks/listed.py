"""One page of a full QuickBooks listing, read straight from its raw body.

`listed` decodes a query answer (`decode`) and normalizes its rows (`normalize_all`): all a
full pull fetched ahead needs of a page is its records, its quarantined rows and how many
rows it held (a short page ends its entity). It is a pure function of the body, so it runs
in the fetching thread or, for a large pull, in the page decoder's process
(`connectors.offload`); only this module, decode and normalize load there, not the SDK.

An answer it cannot read (a fault, another shape) is None: the caller gives it to the
SDK's own checks, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.quickbooks.decode import decode
from connectors.quickbooks.normalize import TABLES, normalize_all
from portal_rules.records import Entity, Quarantined


@dataclass(frozen=True, slots=True)
class Listed:
    records: list[Any]  # of the entity's record type
    quarantined: list[Quarantined]
    rows: int  # rows in the answer, quarantined ones included


def listed(body: bytes, entity: Entity, home_currency: str) -> Listed | None:
    """The page's records, or None when only the SDK's checks can say what the answer is."""
    answer = decode(body)
    response = answer.get("QueryResponse") if answer is not None else None
    rows = response.get(TABLES[entity], []) if isinstance(response, dict) else None
    if not isinstance(rows, list):
        return None
    records, quarantined = normalize_all(entity, rows, home_currency)
    return Listed(records, quarantined, len(rows))
