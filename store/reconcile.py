"""The end of a full pull: stored records it did not re-read, and marking those gone.

Rows carry `seen_run`, the run that last read them. At the end of a full pull begun by run
`since_run`, rows not seen since are candidates; the sync confirms with the source which of
them are really absent (a record can move to an already-read page when another is deleted
mid-pull) and only those are marked deleted here. A deletion only flags and hides the row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Table, select, update

from portal_rules.records import Entity
from portal_rules.types import CompanyPolicy
from store.accounts import recompute_accounts
from store.history.tables import CREDITS, PAYMENTS
from store.writes import CONTACTS, CUSTOMERS, INVOICES

TABLES: dict[Entity, Table] = {
    "customers": CUSTOMERS,
    "invoices": INVOICES,
    "payments": PAYMENTS,
    "credits": CREDITS,
}
_HIDDEN = {"customers": {"portal_visible": False}, "invoices": {"visible": False}}
_CHUNK = 500  # refs per statement, well inside every driver's parameter limits


def stored_entities(connection: Connection, company_id: str) -> set[Entity]:
    """The entities the company has at least one live (not deleted) record of."""
    return {
        entity
        for entity, table in TABLES.items()
        if connection.scalar(
            select(table.c.ref).where(table.c.company_id == company_id, table.c.deleted.is_(False)).limit(1)
        )
        is not None
    }


def unseen(
    connection: Connection, company_id: str, since_run: int, entities: Iterable[Entity] = tuple(TABLES)
) -> dict[Entity, list[str]]:
    """Per entity (of `entities`), the live stored refs no run since `since_run` has read."""
    found: dict[Entity, list[str]] = {}
    for entity in entities:
        table = TABLES[entity]
        found[entity] = list(
            connection.scalars(
                select(table.c.ref).where(
                    table.c.company_id == company_id,
                    table.c.deleted.is_(False),
                    table.c.seen_run.is_(None) | (table.c.seen_run < since_run),
                )
            )
        )
    return found


def mark_absent(
    connection: Connection,
    company_id: str,
    policy: CompanyPolicy,
    absent: Mapping[Entity, Collection[str]],
) -> dict[str, int]:
    """Mark `absent` refs deleted and hidden; portal accounts are re-assessed for the company.

    Returns, per entity, how many rows were newly marked.
    """
    gone: dict[str, int] = {}
    for entity, table in TABLES.items():
        gone[entity] = 0
        for refs in _chunks(sorted(absent.get(entity, ()))):
            gone[entity] += connection.execute(
                update(table)
                .where(table.c.company_id == company_id, table.c.deleted.is_(False), table.c.ref.in_(refs))
                .values(deleted=True, **_HIDDEN.get(entity, {}))
            ).rowcount
            if entity == "customers":
                connection.execute(
                    update(CONTACTS)
                    .where(CONTACTS.c.company_id == company_id, CONTACTS.c.customer_ref.in_(refs))
                    .values(in_source=False)
                )
    recompute_accounts(connection, company_id, policy)
    return gone


def _chunks(refs: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(refs), _CHUNK):
        yield refs[start : start + _CHUNK]
