"""The migrations build the indexes the table classes declare, no more and no fewer.

The writers pay for every index on every row, and the readers rely on the declared ones: an
index dropped from a class but left in a migration (or the reverse) would go unnoticed.
"""

from __future__ import annotations

from sqlalchemy import inspect

import store.fleet_tables
import store.health_tables
import store.history.tables  # noqa: F401  (their tables join the shared metadata)
from store.tables import metadata


def _declared() -> dict[str, dict[str, tuple[str, ...]]]:
    return {
        table.name: {index.name: tuple(c.name for c in index.columns) for index in table.indexes}
        for table in metadata.sorted_tables
    }


def _migrated(engine, tables) -> dict[str, dict[str, tuple[str, ...]]]:
    inspector = inspect(engine)
    return {
        name: {
            index["name"]: tuple(index["column_names"])
            for index in inspector.get_indexes(name)
            # the ones behind UNIQUE constraints are the constraints', not declared indexes
            if not index.get("duplicates_constraint") and not index["unique"]
        }
        for name in tables
    }


def test_migrated_indexes_are_the_declared_ones(engine):
    declared = _declared()
    assert _migrated(engine, declared) == declared


def test_allocations_are_indexed_by_invoice_only(engine):
    # read by invoice (statements, the health tally) and by owner (the unique key); migration
    # 0009 dropped the index by source, which nothing read and every allocation paid for
    assert _migrated(engine, ["allocations"]) == {
        "allocations": {"ix_allocations_company_invoice": ("company_id", "invoice_ref")}
    }
