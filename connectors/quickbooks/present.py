"""Which records QuickBooks still holds, asked by id: deletions of a full pull are confirmed.

A full pull pages by STARTPOSITION over `ORDERBY Id`. A record deleted mid-pull on a page
already read shifts every later record up by one, so the record that crossed the page
boundary is never returned, though it is alive (the first incremental pull reads it, see
`connectors.quickbooks.shift`). Before the store marks a record deleted because a full pull
did not return it, it asks here:
`SELECT Id FROM Invoice WHERE Id IN ('1','2',...)` (deleted records are never returned by
a query; voided ones are, and are still present), as many ids per statement as keep it
under `MAX_STATEMENT_CHARS`, at most `MAXRESULTS` 1000.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from connectors.base import ConnectorError
from connectors.quickbooks.client import QboClient
from connectors.quickbooks.pull import TABLES

# QuickBooks documents no exact limit on a statement's length; the SDK POSTs it as the body,
# so no URL limit applies. 4,000 characters holds about 450 numeric ids per request.
MAX_STATEMENT_CHARS = 4000
MAX_RESULTS = 1000


def confirm_present(client: QboClient, entity: str, refs: Sequence[str]) -> tuple[set[str], int]:
    """The refs of `entity` QuickBooks still has, and the HTTP requests it took."""
    table = _table(entity)
    present: set[str] = set()
    calls = 0
    for statement in statements(table, refs):
        reply = client.query(statement)
        calls += reply.calls
        response = reply.body.get("QueryResponse")
        rows = response.get(table, []) if isinstance(response, dict) else None
        if not isinstance(rows, list):
            raise ConnectorError(f"unexpected QuickBooks answer to a {table} query by id")
        present.update(str(row["Id"]) for row in rows if isinstance(row, dict) and row.get("Id") is not None)
    return present & set(refs), calls


def statements(table: str, refs: Sequence[str]) -> Iterator[str]:
    """`SELECT Id` statements covering `refs`, each within the length and result limits."""
    # A plain query of customers returns active ones only: inactive customers are present too.
    where = "Active IN (true,false) AND " if table == "Customer" else ""
    head = f"SELECT Id FROM {table} WHERE {where}Id IN ("
    tail = f") MAXRESULTS {MAX_RESULTS}"
    batch: list[str] = []
    length = len(head) + len(tail)
    for ref in dict.fromkeys(refs):  # each once, in the caller's order
        literal = "'" + ref.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if batch and (length + len(literal) + 1 > MAX_STATEMENT_CHARS or len(batch) >= MAX_RESULTS):
            yield head + ",".join(batch) + tail
            batch, length = [], len(head) + len(tail)
        batch.append(literal)
        length += len(literal) + 1
    if batch:
        yield head + ",".join(batch) + tail


def _table(entity: str) -> str:
    if entity not in TABLES:
        raise ValueError(f"unknown entity {entity!r}: one of {', '.join(TABLES)}")
    return TABLES[entity]  # type: ignore[index]
