"""The store's schema in tests: its indexes as the table classes declare them and as a
migrated database has them, and migrations run to a given revision."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from alembic.config import Config
from sqlalchemy import Engine, inspect

import store.fleet_tables
import store.health_tables
import store.history.tables  # noqa: F401  (their tables join the shared metadata)
from store.db import MIGRATIONS
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


def migrate(engine: Engine, step: Callable[[Config, str], None], target: str) -> None:
    """Run Alembic's `step` (`command.upgrade` or `command.downgrade`) to `target` on
    `engine`, as `store.db.upgrade` runs it to the newest revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        step(config, target)
