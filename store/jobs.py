"""Periodic fleet jobs (reminder planning, mail dispatch, token keep-alive): once per interval.

A job row holds its next due time. Claiming it is one conditional UPDATE that also moves
the due time on by the interval, so of any number of workers exactly one runs each
occurrence (on PostgreSQL the row lock makes the others re-check and miss; SQLite has one
writer). A claim expires like a sync's: a killed worker's job runs again at the next due.

Due times (`next_due_at`, `last_run_at`) are business time, the workers' injected clock
(`now`); a claim's expiry (`claimed_until`) is written and judged on the store's clock
(`store.clock`), so a worker whose clock runs ahead never runs a job a live worker holds.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, or_, select, update

from store.bulk import insert_ignoring
from store.clock import store_now
from store.fleet_tables import FleetJob
from store.wakeups import notify_requested

J = FleetJob.__table__.c
AT_ONCE = datetime(2000, 1, 1, tzinfo=UTC)  # a due time before any worker's "now"
# However often a job is brought forward (a flood of portal requests), it runs at most this often
MIN_GAP = timedelta(seconds=0.5)
DISPATCH = "dispatch"  # the mail dispatch (`sync.jobs.send`)
# issues the invitations portal requests decided on and mails them (`sync.jobs.answer_requests`):
# a job of its own, so a long backlog in the dispatch never holds them
REQUESTED = "requested"


def ensure_jobs(engine: Engine, names: Iterable[str], *, now: datetime) -> None:
    """Create the job rows (due now) that do not exist yet."""
    with engine.begin() as connection:
        insert_ignoring(
            connection, FleetJob.__table__, [{"name": name, "next_due_at": now} for name in names]
        )


def _due_and_free(connection: Connection, now: datetime):
    """Due by `now`, not held by a live claim (on the store's clock), and not run within
    `MIN_GAP` (a last run in this clock's future was another worker's clock running ahead:
    the gap is then moot, or no worker could claim the job until this clock caught up)."""
    return and_(
        J.next_due_at <= now,
        or_(J.claimed_by.is_(None), J.claimed_until < store_now(connection)),
        or_(J.last_run_at.is_(None), J.last_run_at <= now - MIN_GAP, J.last_run_at > now),
    )


def due_jobs(engine: Engine, names: Collection[str], *, now: datetime) -> list[str]:
    """The jobs among `names` due now and held by nobody: a read, so a worker's idle tick
    writes nothing (on SQLite a write waits for the one writer, e.g. a sync's page)."""
    if not names:
        return []
    with engine.connect() as connection:
        return list(
            connection.scalars(select(J.name).where(J.name.in_(list(names)), _due_and_free(connection, now)))
        )


def claim_job(
    engine: Engine, name: str, worker: str, *, now: datetime, interval: timedelta, ttl: timedelta
) -> bool:
    """Take this occurrence of job `name` if it is due and nobody holds it; True if taken."""
    with engine.begin() as connection:
        return bool(
            connection.execute(
                update(FleetJob)
                .where(J.name == name, _due_and_free(connection, now))
                .values(
                    claimed_by=worker,
                    claimed_until=store_now(connection) + ttl,
                    next_due_at=now + interval,
                    last_worker=worker,
                    last_run_at=now,
                )
            ).rowcount
        )


def bring_forward(connection: Connection, name: str) -> bool:
    """Make job `name` due at once, whatever the workers' clocks say (a time of this
    process's would be in a worker's future by any skew between them), and wake the
    workers listening (PostgreSQL; SQLite workers poll every half second); True if it was
    not due yet. Already due, it changes nothing and wakes nobody: a flood of requests
    wakes the workers once per run of the job, not once each. With no worker, or no row
    yet, nothing happens: the first worker to start runs every job at once anyway."""
    moved = connection.execute(
        update(FleetJob).where(J.name == name, J.next_due_at > AT_ONCE).values(next_due_at=AT_ONCE)
    ).rowcount
    notify_requested(connection, f"job:{name}", when=bool(moved))  # the same statement either way
    return bool(moved)


def renew_jobs(engine: Engine, worker: str, names: Collection[str], *, ttl: timedelta) -> None:
    """Push back the expiry of this worker's job claims to `ttl` from now on the store's clock."""
    if not names:
        return
    with engine.begin() as connection:
        connection.execute(
            update(FleetJob)
            .where(J.claimed_by == worker, J.name.in_(list(names)))
            .values(claimed_until=store_now(connection) + ttl)
        )


def finish_job(engine: Engine, name: str, worker: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(FleetJob)
            .where(J.name == name, J.claimed_by == worker)
            .values(claimed_by=None, claimed_until=None)
        )
