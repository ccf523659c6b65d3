"""The one clock that times written by one process and judged by another are read from.

Workers on several machines share one PostgreSQL store, and their clocks may be seconds or
minutes apart (a VM resumed from suspend, a container without NTP): an expiry one of them
writes from its own clock, and another compares with its own, is off by the skew between
them. So leases and heartbeats are written and judged on the database server's clock; on
SQLite, whose processes share one machine, on this machine's real clock. Never on an
injected clock (`--now`, a test's), which drives the schedule and delivery windows only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, DateTime, func, select


def store_now(connection: Connection):
    """Now on the store's clock: on PostgreSQL an expression (the server's time as the
    statement starts), on SQLite this machine's real clock."""
    if connection.dialect.name == "postgresql":
        return func.statement_timestamp(type_=DateTime(timezone=True))
    return datetime.now(UTC)


def store_time(connection: Connection) -> datetime:
    """Now on the store's clock as a value: what a claim's expiry read back is compared with
    (`arsync status`)."""
    if connection.dialect.name == "postgresql":
        return connection.scalar(select(store_now(connection)))
    return datetime.now(UTC)
