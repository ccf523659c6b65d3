"""The `workers` table: who is running, since when, and what each is doing (heartbeats).

Every time here is the store's (`store.clock`): a worker whose clock ran ahead of another's
by what is left of its heartbeat would otherwise judge it dead, and settle the mail claims
of a worker still delivering them.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import Engine, delete, select, update

from store.clock import store_now, store_time
from store.fleet_tables import WorkerRow
from store.owners import gone, owner_is_dead

W = WorkerRow.__table__.c


def register_worker(engine: Engine, worker: str, *, concurrency: int, ttl: timedelta) -> None:
    """Say this worker started now, alive for `ttl` (until its next heartbeat)."""
    with engine.begin() as connection:
        now = store_now(connection)
        connection.execute(
            WorkerRow.__table__.insert().values(
                worker=worker,
                host=socket.gethostname(),
                pid=os.getpid(),
                concurrency=concurrency,
                started_at=now,
                heartbeat_at=now,
                alive_until=now + ttl,
                running="[]",
            )
        )


def heartbeat(engine: Engine, worker: str, running: Collection[str], *, ttl: timedelta) -> None:
    """Say this worker is alive for `ttl` more, running `running` (company ids)."""
    with engine.begin() as connection:
        now = store_now(connection)
        connection.execute(
            update(WorkerRow)
            .where(W.worker == worker)
            .values(heartbeat_at=now, alive_until=now + ttl, running=json.dumps(sorted(running)))
        )


def unregister_worker(engine: Engine, worker: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(WorkerRow).where(W.worker == worker))


FORGET_AFTER = timedelta(days=1)  # a dead worker's row is kept this long (its mail claims)


def dead_workers(engine: Engine) -> list[str]:
    """Workers whose heartbeat ran out (killed, machine lost), or processes of this host that
    have exited (known at once), and not yet forgotten."""
    with engine.connect() as connection:
        now = store_time(connection)
        rows = connection.execute(select(W.worker, W.alive_until)).all()
    return [worker for worker, alive_until in rows if gone(worker, alive_until, now)]


def forget_dead(engine: Engine) -> int:
    """Delete the rows of workers dead for longer than FORGET_AFTER."""
    with engine.begin() as connection:
        forgotten = W.alive_until < store_now(connection) - FORGET_AFTER
        return connection.execute(delete(WorkerRow).where(forgotten)).rowcount


def live_workers(engine: Engine) -> list[dict]:
    """Workers whose heartbeat still holds, oldest first, `running` as a list."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(WorkerRow.__table__)
            .where(W.alive_until >= store_now(connection))
            .order_by(W.started_at, W.worker)
        ).mappings()
        return [
            {**row, "running": json.loads(row["running"])} for row in rows if not owner_is_dead(row["worker"])
        ]
