"""Mirror of the configured companies in the store (names and time zones the views need)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from store.bulk import dialect_insert, insert_ignoring
from store.connections import ConnectionStatus
from store.tables import Company, CompanyConnection


@dataclass(frozen=True, slots=True)
class CompanyRow:
    company_id: str
    name: str
    timezone: str
    kind: str


def register_companies(engine: Engine, companies: Iterable[CompanyRow]) -> None:
    """Insert or update one row per configured company, and insert its connection row.

    Upserts (`ON CONFLICT`), so any number of processes starting at once on a fresh store
    register the same companies without a unique-key race.
    """
    rows = [
        {"company_id": r.company_id, "name": r.name, "timezone": r.timezone, "kind": r.kind}
        for r in companies
    ]
    if not rows:
        return
    with engine.begin() as connection:
        upsert = dialect_insert(connection, Company.__table__)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=["company_id"],
                set_={
                    "name": upsert.excluded.name,
                    "timezone": upsert.excluded.timezone,
                    "kind": upsert.excluded.kind,
                },
            ),
            rows,
        )
        insert_ignoring(
            connection,
            CompanyConnection.__table__,
            [
                {"company_id": r["company_id"], "kind": r["kind"], "status": ConnectionStatus.NOT_CONNECTED}
                for r in rows
            ],
        )
