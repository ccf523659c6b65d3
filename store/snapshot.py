"""Several reads that must agree with each other, taken from one state of the store.

Each statement alone is consistent, but a sync may commit between two of them: a statement
read before a payment lands and an aging read after it would print a closing balance the
aging contradicts. Inside `snapshot`, every read sees the store as of the first one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one state of the store; nothing is written."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite begins transactions only before writes, so each SELECT would read the
            # newest commit; an explicit BEGIN holds the WAL snapshot of the first read
            connection.exec_driver_sql("BEGIN")
        else:  # PostgreSQL's READ COMMITTED takes a new snapshot per statement
            connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield connection
        finally:
            connection.rollback()
