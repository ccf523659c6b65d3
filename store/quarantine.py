"""The quarantine: records a sync could not read, kept until the books give them readably.

A page's unreadable records are stored with their reason (`record`). While a record's row is
outstanding, its stored row (if any) is older than what the books hold: `arsync status`
lists it and the reminders of its invoice, or of its customer's invoices, are held
(`held_refs`, `holds`). A later page that stores the record resolves it (`resolve_stored`,
asked only for the entities `open_entities` names); the end of a full pull resolves every
row older than the pull (`resolve_before`): its record was read again, quarantined again
(its rows kept, to say since when), or is gone. The rows stay afterwards, counted by
`/metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Select, distinct, exists, func, insert, or_, select, update

from portal_rules.records import Entity, Quarantined, Record
from store.bulk import among
from store.tables import QuarantinedRecord

QUARANTINE = QuarantinedRecord.__table__
_C = QUARANTINE.c


def record(
    connection: Connection, company_id: str, run_id: int, quarantined: Sequence[Quarantined], now: datetime
) -> None:
    """Store `quarantined` (refs and reasons already fit for the store) as outstanding."""
    connection.execute(
        insert(QUARANTINE),
        [
            {
                "company_id": company_id,
                "run_id": run_id,
                "entity": q.entity,
                "ref": q.ref,
                "reason": q.reason,
                "seen_at": now,
            }
            for q in quarantined
        ],
    )


def resolve_stored(
    connection: Connection, company_id: str, entity: Entity, records: Sequence[Record], now: datetime
) -> None:
    """Resolve the outstanding rows of the `records` of `entity` a page has just stored. A run
    asks it only of the entities `open_entities` named as it began (and those its own pages
    quarantined): a sync of a clean company pays one query in all, not one per page (a
    statement built and run per page cost ~2 ms of a 1000-row page's ~40)."""
    refs = [record.ref for record in records]
    connection.execute(
        update(QUARANTINE)
        .where(*_open(company_id, entity), among(connection, _C.ref, refs))
        .values(resolved_at=now)
    )


def open_entities(connection: Connection, company_id: str) -> set[Entity]:
    """The entities the company has outstanding quarantine rows of (one partial-index scan)."""
    query = select(_C.entity).where(_C.company_id == company_id, _C.resolved_at.is_(None)).distinct()
    return set(connection.scalars(query))


def resolve_before(connection: Connection, company_id: str, run_id: int, now: datetime) -> None:
    """At the end of a full pull begun by run `run_id`: resolve every outstanding row older
    than the pull (rows of its own runs are what the books hold now) but those of records the
    pull quarantined again: they still say since when the record has been unreadable."""
    again = QUARANTINE.alias("again")
    quarantined_again = exists().where(
        again.c.company_id == _C.company_id,
        again.c.entity == _C.entity,
        again.c.ref == _C.ref,
        again.c.run_id >= run_id,
    )
    connection.execute(
        update(QUARANTINE)
        .where(_C.company_id == company_id, _C.resolved_at.is_(None), _C.run_id < run_id, ~quarantined_again)
        .values(resolved_at=now)
    )


def held_refs(company_id: str, entity: Entity) -> Select:
    """The refs of `entity` whose latest version in the books is quarantined, as a subquery
    (never a NULL: `NOT IN` a set holding one is true of nothing)."""
    return select(_C.ref).where(*_open(company_id, entity), _C.ref.is_not(None))


def held_counts(connection: Connection, company_id: str) -> dict[Entity, int]:
    """How many invoices, and customers, `held_refs` holds for the company (each once)."""
    query = (
        select(_C.entity, func.count(distinct(_C.ref)))
        .where(
            _C.company_id == company_id, _C.resolved_at.is_(None), _C.entity.in_(("invoices", "customers"))
        )
        .group_by(_C.entity)
    )
    return {entity: n for entity, n in connection.execute(query)}


def _open(company_id: str | ColumnElement, entity: Entity) -> tuple[ColumnElement[bool], ...]:
    return (_C.company_id == company_id, _C.entity == entity, _C.resolved_at.is_(None))


def holds(
    company_id: ColumnElement, invoice_ref: ColumnElement, customer_ref: ColumnElement
) -> ColumnElement[bool]:
    """Whether `held_refs` holds the invoice of these columns, or its customer (correlated)."""
    return or_(
        *(
            exists().where(*_open(company_id, entity), _C.ref == ref)
            for entity, ref in (("invoices", invoice_ref), ("customers", customer_ref))
        )
    )
