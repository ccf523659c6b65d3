"""Named cross-process leases in the `leases` table (works the same on SQLite and PostgreSQL).

Acquisition is one INSERT, or one conditional UPDATE of an expired lease, so two workers
can never both hold a name. Used for "one sync per company" and "one token refresher".
Owners are "host:pid:tag": a lease whose owner was a process on this host that no longer
exists (killed mid-sync) is taken over at once instead of blocking until it expires.

Expiry is written and judged on the store's clock (`store.clock`), never the caller's: a
worker whose clock ran ahead of the holder's by the time left on a lease would take it from
a live holder, and so would one run with `--now` (a test's or an operator's time).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from store.clock import store_now
from store.owners import owner_is_dead
from store.tables import Lease


def sync_lease(company_id: str) -> str:
    """The name of the lease a sync of `company_id` holds while it runs."""
    return f"sync:{company_id}"


class LeaseBusy(Exception):
    """Another worker holds the lease."""


def try_acquire(engine: Engine, name: str, owner: str, ttl: timedelta) -> bool:
    """Take `name` for `ttl` (on the store's clock) unless a live holder has it."""
    try:
        with engine.begin() as connection:
            expires = store_now(connection) + ttl
            connection.execute(insert(Lease).values(name=name, owner=owner, expires_at=expires))
        return True
    except IntegrityError:
        pass
    with engine.begin() as connection:
        now = store_now(connection)
        expires = now + ttl
        result = connection.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.expires_at < now, Lease.owner == owner))
            .values(owner=owner, expires_at=expires)
        )
        if result.rowcount == 1:
            return True
        holder = connection.scalar(select(Lease.owner).where(Lease.name == name))
        if holder is None or not owner_is_dead(holder):
            return False
        taken = connection.execute(
            update(Lease)
            .where(Lease.name == name, Lease.owner == holder)
            .values(owner=owner, expires_at=expires)
        )
        return taken.rowcount == 1


def renew(connection: Connection, name: str, owner: str, ttl: timedelta) -> bool:
    """Extend a lease `owner` holds to `ttl` from now (the store's clock), in the caller's
    transaction: one UPDATE. False when another owner has it now (ours expired and was taken
    over), or it is gone."""
    result = connection.execute(
        update(Lease)
        .where(Lease.name == name, Lease.owner == owner)
        .values(expires_at=store_now(connection) + ttl)
    )
    return result.rowcount == 1


def abandoned(engine: Engine, prefix: str) -> list[str]:
    """The leases named `prefix...` whose holder is gone without releasing them: expired on
    the store's clock, or held by a process of this machine that has exited (killed)."""
    with engine.connect() as connection:
        expired = Lease.expires_at < store_now(connection)
        held = connection.execute(
            select(Lease.name, Lease.owner, expired).where(Lease.name.startswith(prefix))
        ).all()
    return [name for name, owner, gone in held if gone or owner_is_dead(owner)]


def holder(engine: Engine, name: str) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(Lease.owner).where(Lease.name == name))


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
) -> Iterator[None]:
    """Hold `name` for the block; wait up to `wait` seconds for it, else raise LeaseBusy."""
    deadline = time.monotonic() + wait
    while not try_acquire(engine, name, owner, ttl):
        if time.monotonic() >= deadline:
            raise LeaseBusy(f"{name} is held by another worker")
        time.sleep(poll)
    try:
        yield
    finally:
        release(engine, name, owner)
