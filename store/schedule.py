"""The fleet's sync schedule: one row per company, claimed by the worker that runs it.

A worker claims due rows (requested first, then oldest-due) with `FOR UPDATE SKIP LOCKED`
on PostgreSQL, so several workers never pick the same company; on SQLite, the one writer,
the conditional UPDATE of the claim is exclusive on its own. A claim carries an expiry the
worker renews while it runs: a worker killed mid-sync leaves its companies to the others
once the claim expires. Requests (`request_sync`) coalesce: however many arrive before the
sync starts, one sync serves them; one arriving while it runs asks for another after it.

A run a worker began and never finished (its claim expired) is taken up again at once, the
first time; a company whose syncs keep killing their workers is then held back longer each
time (`ABANDONED_HOLDS`), so it cannot take the fleet down one worker after another. A run
that ends, whatever its status, clears the count; `status` shows it.

Two clocks: due times (`next_due_at`, `requested_at`, `last_started_at`) are business time,
the workers' injected clock (`now`), which `--now` and tests drive; a claim's expiry
(`claimed_until`) is written and judged on the store's clock (`store.clock`), so a worker
whose clock runs ahead never takes a live worker's claim as abandoned, and one behind still
takes a dead worker's once it has expired. The holds are measured from that expiry too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, case, delete, literal, or_, select, true, update

from store.bulk import insert_ignoring
from store.clock import store_now
from store.fleet_tables import SyncSchedule
from store.holds import ABANDONED_HOLDS, held_for
from store.wakeups import notify_requested

S = SyncSchedule.__table__.c
TURNED_AWAY = "wanted while a manual sync ran"
STARVING = timedelta(minutes=1)  # a due sync starts within a minute (SPEC §11), requests or not


class UnknownCompany(LookupError):
    """No schedule for this company: it is neither in the configuration nor in the store."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A company this worker now runs: its due time, and the request it serves if any."""

    company_id: str
    next_due_at: datetime
    requested_at: datetime | None
    reason: str | None
    abandoned: int = 0  # runs in a row that a worker began and never finished, before this one

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    @property
    def due_at(self) -> datetime:
        """Since when the sync was wanted: its request or its due time, whichever came first."""
        return min(self.requested_at, self.next_due_at) if self.requested_at else self.next_due_at


def ensure_scheduled(engine: Engine, company_ids: Iterable[str], *, now: datetime) -> None:
    """Give each company a schedule row (due now) unless it already has one."""
    rows = [{"company_id": company_id, "next_due_at": now} for company_id in company_ids]
    with engine.begin() as connection:
        insert_ignoring(connection, SyncSchedule.__table__, rows)


def unschedule(connection: Connection, company_id: str) -> None:
    """Drop a company's schedule (it was removed); a run in progress still finishes."""
    connection.execute(delete(SyncSchedule).where(S.company_id == company_id))


def request_sync(engine: Engine, company_id: str, *, now: datetime, reason: str = "") -> bool:
    """Ask the workers for a sync of `company_id` as soon as possible.

    True when this recorded a new request, False when it joined one not yet started
    (coalesced). Raises UnknownCompany when the company has no schedule.
    """
    with engine.begin() as connection:
        recorded = connection.execute(
            update(SyncSchedule)
            .where(S.company_id == company_id, S.requested_at.is_(None))
            .values(requested_at=now, request_reason=reason or None)
        ).rowcount
        if recorded:
            notify_requested(connection, company_id)
            return True
        if connection.scalar(select(S.company_id).where(S.company_id == company_id)) is None:
            raise UnknownCompany(f"no company {company_id!r}")
        return False


def _abandoned(before):
    """A claim its worker stopped renewing (killed, lost) before `before` (the store's clock,
    or an expression of the row): the run it began is unfinished."""
    return and_(S.claimed_by.is_not(None), S.claimed_until < _on_claims_clock(before))


def _on_claims_clock(at):
    """`at` (a time of the store's clock: a value on SQLite, an expression on PostgreSQL) as
    the claim expiry's column type."""
    return literal(at, S.claimed_until.type) if isinstance(at, datetime) else at


def abandoned_in_a_row(clock):
    """The runs in a row a worker began and never finished, counting one whose claim has
    expired by `clock` (`store_now`), as an expression of the schedule row."""
    return S.abandoned_runs + case((_abandoned(clock), 1), else_=0)


def _resumable(clock, holds: Sequence[timedelta]):
    """An abandoned claim whose hold is over by `clock` (`store_now`; see `ABANDONED_HOLDS`)."""
    by_count = [
        (S.abandoned_runs >= n, _on_claims_clock(clock - held_for(n, holds)))
        for n in range(len(holds) - 1, 0, -1)
    ]
    return _abandoned(case(*by_count, else_=_on_claims_clock(clock)) if by_count else clock)


def _claimable(
    now: datetime, clock, company_ids: Collection[str], holds: Sequence[timedelta] = ABANDONED_HOLDS
):
    """Free (or abandoned, its hold over, by the store's `clock`) and wanted by `now`."""
    free = or_(S.claimed_by.is_(None), _resumable(clock, holds))
    # an abandoned run is wanted whatever its due time: a requested (early) one would
    # otherwise wait for the next scheduled time, the request having left with its worker
    wanted = or_(S.requested_at.is_not(None), S.next_due_at <= now, _abandoned(clock))
    return and_(S.company_id.in_(list(company_ids)), free, wanted)


def claim_due(
    engine: Engine,
    worker: str,
    *,
    now: datetime,
    company_ids: Collection[str],
    limit: int,
    ttl: timedelta,
    starving: timedelta = STARVING,
    holds: Sequence[timedelta] = ABANDONED_HOLDS,
    scheduled: int | None = None,
) -> list[Claim]:
    """Claim up to `limit` due companies among `company_ids`: requested ones, and ones due
    for longer than `starving`, first, each by how long it has been wanted; then the rest,
    oldest-due first. A stream of requests (one busy company's webhooks) thus never keeps
    the others' scheduled syncs waiting beyond a minute, and a request waits only for what
    was wanted before it while the fleet is behind. An abandoned run (its claim expired) is
    claimed once its hold is over (`holds`, by the runs abandoned in a row before it).

    At most `scheduled` of the claims (all, when None) may be syncs nobody requested: the
    rest of `limit` is left to requests (a worker's slot kept for them, `sync.daemon`)."""
    if limit <= 0 or not company_ids:
        return []
    scheduled = limit if scheduled is None else max(0, min(scheduled, limit))
    claims = _claim(engine, worker, now, company_ids, scheduled, ttl, starving, holds)
    if len(claims) < limit and scheduled < limit:  # the slots kept for requests
        left, requested = limit - len(claims), S.requested_at.is_not(None)
        claims += _claim(engine, worker, now, company_ids, left, ttl, starving, holds, requested)
    return claims


def _claim(engine, worker, now, company_ids, limit, ttl, starving, holds, only=None) -> list[Claim]:
    """`claim_due`'s claims of up to `limit` rows (of those matching `only`, if given)."""
    if limit <= 0:
        return []
    first = or_(S.requested_at.is_not(None), S.next_due_at < now - starving)
    order = (case((first, 0), else_=1), _wanted_since(), S.company_id)

    def picked(clock):
        return (
            select(S.company_id, S.next_due_at, S.requested_at, S.request_reason, abandoned_in_a_row(clock))
            .where(_claimable(now, clock, company_ids, holds), true() if only is None else only)
            .order_by(*order)
            .limit(limit)
        )

    # A sync never starts before the request it serves: a clock read before the request was
    # recorded (the tick's, or another machine's) would otherwise date the start earlier.
    started = case((S.requested_at > now, S.requested_at), else_=literal(now, S.last_started_at.type))
    claims = []
    if engine.dialect.name != "postgresql":
        # SQLite: read first, outside the write: a read transaction turned writer fails at
        # once if another connection wrote meanwhile. The conditional UPDATE below re-checks.
        with engine.connect() as connection:
            candidates = connection.execute(picked(store_now(connection))).all()
    with engine.begin() as connection:
        clock = store_now(connection)
        if engine.dialect.name == "postgresql":
            candidates = connection.execute(picked(clock).with_for_update(skip_locked=True)).all()
        for company_id, due_at, requested_at, reason, abandoned in candidates:
            taken = connection.execute(
                update(SyncSchedule)
                .where(S.company_id == company_id, _claimable(now, clock, [company_id], holds))
                .values(
                    abandoned_runs=abandoned_in_a_row(clock),
                    claimed_by=worker,
                    claimed_until=clock + ttl,
                    requested_at=None,
                    request_reason=None,
                    last_worker=worker,
                    last_started_at=started,
                )
            ).rowcount
            if taken:
                claims.append(Claim(company_id, due_at, requested_at, reason, abandoned))
    return claims


def _wanted_since():
    """Order key: when the row became wanted, the earliest of its due time, its request and
    when the run a claim still holds began (an abandoned one's, when this picks it); all
    business time, unlike the claim's expiry."""
    return case(
        (and_(S.requested_at.is_not(None), S.requested_at < S.next_due_at), S.requested_at),
        (and_(S.claimed_by.is_not(None), S.last_started_at < S.next_due_at), S.last_started_at),
        else_=S.next_due_at,
    )


def renew(engine: Engine, worker: str, company_ids: Collection[str], *, ttl: timedelta) -> None:
    """Push back the expiry of this worker's claims on `company_ids` to `ttl` from now on the
    store's clock (a heartbeat)."""
    if not company_ids:
        return
    with engine.begin() as connection:
        connection.execute(
            update(SyncSchedule)
            .where(S.claimed_by == worker, S.company_id.in_(list(company_ids)))
            .values(claimed_until=store_now(connection) + ttl)
        )


def next_due(previous_due: datetime, started: datetime, finished: datetime, interval: timedelta) -> datetime:
    """The next due time: the cadence of the previous due time, never in the past.

    A sync that started less than half an interval late keeps its rhythm (due + interval),
    so small scheduling delays do not drift the schedule; an early (requested) sync, or one
    later than that, counts from when it started, so two runs never start within half an
    interval of each other.
    """
    base = previous_due if started - interval / 2 < previous_due <= started else started
    return max(base + interval, finished)


def release(
    engine: Engine, worker: str, company_id: str, *, next_at: datetime, finished: datetime, status: str
) -> bool:
    """Let go of this worker's claim on `company_id`, due again at `next_at`; False if not ours.

    A run that ran clears the count of abandoned runs; one turned away (`skipped`: another
    process, perhaps the killed worker, still held the lease) did not run, and keeps it."""
    values: dict = {
        "claimed_by": None,
        "claimed_until": None,
        "next_due_at": next_at,
        "last_finished_at": finished,
        "last_status": status,
    }
    if status != "skipped":
        values["abandoned_runs"] = 0
    with engine.begin() as connection:
        return bool(
            connection.execute(
                update(SyncSchedule)
                .where(S.company_id == company_id, S.claimed_by == worker)
                .values(**values)
            ).rowcount
        )


def record_manual_sync(
    engine: Engine,
    company_id: str,
    worker: str,
    *,
    started: datetime,
    finished: datetime,
    status: str,
    interval: timedelta,
) -> None:
    """A sync run outside the schedule (`arsync sync`, the demo) counts as the company's sync.

    A successful one pushes the next due time an interval past its start, so the workers do
    not sync the company again right away; a pending request stays pending. A worker turned
    away meanwhile (the lease was this run's) took a request, or a due time, this run may
    have read too early for: it becomes a request again, served right after. A row a worker
    has claimed (and still renews: its claim not expired on the store's clock) is left to
    that worker.
    """
    turned_away = and_(S.last_status == "skipped", S.last_finished_at >= started, S.requested_at.is_(None))
    values: dict = {
        "last_worker": worker,
        "last_started_at": started,
        "last_finished_at": finished,
        "last_status": status,
        "claimed_by": None,  # an abandoned claim (the only kind updated here): this run did its work
        "claimed_until": None,
        "abandoned_runs": 0,
        "requested_at": case((turned_away, literal(finished, S.requested_at.type)), else_=S.requested_at),
        "request_reason": case((turned_away, literal(TURNED_AWAY)), else_=S.request_reason),
    }
    if status == "ok":
        values["next_due_at"] = max(started + interval, finished)
    with engine.begin() as connection:
        connection.execute(
            update(SyncSchedule)
            .where(S.company_id == company_id, or_(S.claimed_by.is_(None), _abandoned(store_now(connection))))
            .values(**values)
        )
        notify_requested(connection, company_id)  # a listening worker takes it at once, if any


def schedule_row(engine: Engine, company_id: str) -> dict | None:
    """One company's schedule row, or None if it has none."""
    with engine.connect() as connection:
        row = (
            connection.execute(select(SyncSchedule.__table__).where(S.company_id == company_id))
            .mappings()
            .first()
        )
    return dict(row) if row else None


def schedule_rows(engine: Engine) -> dict[str, dict]:
    """Every schedule row by company id (for `arsync status`)."""
    with engine.connect() as connection:
        rows = connection.execute(select(SyncSchedule.__table__)).mappings().all()
    return {row["company_id"]: dict(row) for row in rows}
