"""Named cross-process leases in the `leases` table (works the same on SQLite and PostgreSQL).

Acquisition is one INSERT, or one conditional UPDATE of an expired lease, so two workers
can never both hold a name. Used for "one sync per company" and "one token refresher".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from store.tables import Lease


class LeaseBusy(Exception):
    """Another worker holds the lease."""


def try_acquire(engine: Engine, name: str, owner: str, ttl: timedelta, now: datetime) -> bool:
    expires = now + ttl
    try:
        with engine.begin() as connection:
            connection.execute(insert(Lease).values(name=name, owner=owner, expires_at=expires))
        return True
    except IntegrityError:
        pass
    with engine.begin() as connection:
        result = connection.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.expires_at < now, Lease.owner == owner))
            .values(owner=owner, expires_at=expires)
        )
        return result.rowcount == 1


def release(engine: Engine, name: str, owner: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))


@contextmanager
def lease(
    engine: Engine,
    name: str,
    owner: str,
    *,
    ttl: timedelta = timedelta(minutes=2),
    wait: float = 0.0,
    poll: float = 0.1,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[None]:
    """Hold `name` for the block; wait up to `wait` seconds for it, else raise LeaseBusy."""
    deadline = time.monotonic() + wait
    while not try_acquire(engine, name, owner, ttl, clock()):
        if time.monotonic() >= deadline:
            raise LeaseBusy(f"{name} is held by another worker")
        time.sleep(poll)
    try:
        yield
    finally:
        release(engine, name, owner)
