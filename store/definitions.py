"""Companies kept in the store (`arsync company add`): their definitions, and purging a company.

A definition is the company's `[[companies]]` table as JSON, validated by the caller
before it is stored; workers read them back to know which companies exist without a
redeploy.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Engine, delete, select

from store.api_keys import revoke_all_keys
from store.fleet_tables import CompanyDefinition
from store.leases import sync_lease
from store.schedule import unschedule
from store.tables import Lease, metadata

D = CompanyDefinition.__table__.c


class CompanyExists(Exception):
    """The id is already a stored company."""


class Removal(NamedTuple):
    stored: bool  # its definition was in the store (else: only rows an earlier removal kept)
    revoked: int  # portal API keys revoked


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


def remove_definition(
    engine: Engine, company_id: str, *, purge: bool = False, revoke_keys_at: datetime | None = None
) -> Removal | None:
    """Forget a stored company (its synced rows stay unless `purge`); None if it was not
    stored, else whether it was and how many of its portal API keys were revoked
    (`revoke_keys_at`). With `purge`, the rows an earlier removal kept are deleted too, the
    definition being gone.

    Revoking them with the company matters to a SaaS operator: an id removed and later given
    to another tenant would otherwise let the first tenant's portal read the second's books.
    """
    with engine.begin() as connection:
        removed = connection.execute(delete(CompanyDefinition).where(D.company_id == company_id)).rowcount
        if not removed and not purge:
            return None
        unschedule(connection, company_id)
        revoked = 0
        if revoke_keys_at is not None and not purge:  # a purge deletes them below
            revoked = revoke_all_keys(connection, company_id, now=revoke_keys_at)
        if purge:
            # A sync still running renews its lease with every page it commits: without the
            # lease its next page is refused (LeaseBusy) and writes nothing after the purge.
            # On PostgreSQL this DELETE waits for a page being committed, which the rest then sees.
            connection.execute(delete(Lease).where(Lease.name == sync_lease(company_id)))
            deleted = sum(
                connection.execute(delete(table).where(table.c.company_id == company_id)).rowcount
                for table in reversed(metadata.sorted_tables)
                if "company_id" in table.c and table is not CompanyDefinition.__table__
            )
            if not removed and not deleted:  # neither stored nor any row kept: nothing was there
                return None
    return Removal(bool(removed), revoked)
