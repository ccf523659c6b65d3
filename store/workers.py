"""The `workers` table: who is running, since when, and what each is doing (heartbeats)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from store.fleet_tables import WorkerRow
from store.owners import owner_is_dead

W = WorkerRow.__table__.c


def register_worker(engine: Engine, worker: str, *, concurrency: int, now: datetime, ttl: timedelta) -> None:
    with engine.begin() as connection:
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


def heartbeat(
    engine: Engine, worker: str, running: Collection[str], *, now: datetime, ttl: timedelta
) -> None:
    """Say this worker is alive until `now + ttl`, running `running` (company ids)."""
    with engine.begin() as connection:
        connection.execute(
            update(WorkerRow)
            .where(W.worker == worker)
            .values(heartbeat_at=now, alive_until=now + ttl, running=json.dumps(sorted(running)))
        )


def unregister_worker(engine: Engine, worker: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(WorkerRow).where(W.worker == worker))


FORGET_AFTER = timedelta(days=1)  # a dead worker's row is kept this long (its mail claims)


def dead_workers(engine: Engine, *, now: datetime) -> list[str]:
    """Workers whose heartbeat ran out (killed, machine lost), or processes of this host that
    have exited (known at once), and not yet forgotten."""
    with engine.connect() as connection:
        rows = connection.execute(select(W.worker, W.alive_until)).all()
    return [worker for worker, until in rows if until < now or owner_is_dead(worker)]


def forget_dead(engine: Engine, *, now: datetime) -> int:
    """Delete the rows of workers dead for longer than FORGET_AFTER."""
    with engine.begin() as connection:
        return connection.execute(delete(WorkerRow).where(W.alive_until < now - FORGET_AFTER)).rowcount


def live_workers(engine: Engine, *, now: datetime) -> list[dict]:
    """Workers whose heartbeat still holds at `now`, oldest first, `running` as a list."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(WorkerRow.__table__).where(W.alive_until >= now).order_by(W.started_at, W.worker)
        ).mappings()
        return [
            {**row, "running": json.loads(row["running"])} for row in rows if not owner_is_dead(row["worker"])
        ]
