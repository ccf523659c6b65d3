"""Companies kept in the store (`arsync company add`): their definitions, and purging a company.

A definition is the company's `[[companies]]` table as JSON, validated by the caller
before it is stored; workers read them back to know which companies exist without a
redeploy.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine, delete, select

from store.fleet_tables import CompanyDefinition
from store.schedule import unschedule
from store.tables import metadata

D = CompanyDefinition.__table__.c


class CompanyExists(Exception):
    """The id is already a stored company."""


def add_definitions(engine: Engine, definitions: dict[str, dict], *, now: datetime) -> None:
    """Store every definition, or none: an id already stored raises CompanyExists naming it."""
    with engine.begin() as connection:
        taken = connection.execute(select(D.company_id).where(D.company_id.in_(list(definitions)))).scalars()
        if first := next(iter(sorted(taken)), None):
            raise CompanyExists(f"company {first!r} is already in the store")
        connection.execute(
            CompanyDefinition.__table__.insert(),
            [{"company_id": k, "definition": json.dumps(v), "added_at": now} for k, v in definitions.items()],
        )


def remove_definition(engine: Engine, company_id: str, *, purge: bool = False) -> bool:
    """Forget a stored company (its synced rows stay unless `purge`); False if it was not stored."""
    with engine.begin() as connection:
        removed = connection.execute(delete(CompanyDefinition).where(D.company_id == company_id)).rowcount
        if not removed:
            return False
        unschedule(connection, company_id)
        if purge:
            for table in reversed(metadata.sorted_tables):
                if "company_id" in table.c and table is not CompanyDefinition.__table__:
                    connection.execute(delete(table).where(table.c.company_id == company_id))
    return True
