"""The store's indexes as the table classes declare them and as a migrated database has them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect

import store.fleet_tables
import store.health_tables
import store.history.tables  # noqa: F401  (their tables join the shared metadata)
from store.tables import metadata

Indexes = dict[str, dict[str, tuple[str, ...]]]  # table -> index name -> its columns


def declared_indexes() -> Indexes:
    return {
        table.name: {index.name: tuple(c.name for c in index.columns) for index in table.indexes}
        for table in metadata.sorted_tables
    }


def migrated_indexes(engine, tables: Iterable[str]) -> Indexes:
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
