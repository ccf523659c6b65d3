"""Sync runs past the retention (`[store] keep_runs_days`): deleted, their figures kept as totals.

`sync_runs` gains a row per company per interval (~96,000 a day for 1,000 companies every 15
minutes). A run that finished before the cutoff is deleted, and in the same transaction its
count and API calls are added to `sync_run_totals` under its company and status, so
`/metrics` (`store.metrics`: totals + runs kept) never goes down. The figures added are the
deleted rows' own (`DELETE ... RETURNING`): a row two pruners both chose is deleted, and
counted, by one of them only.

What is kept, whatever its age, and why (every reader of `sync_runs`):
- runs still `running`: `/metrics`' running gauge, and `store.runs.begin` closes a killed
  worker's as interrupted (then dated, they age like the others);
- each company's latest run (by id): `arsync status`'s last sync, its status and error, and
  the connection's health line (`store.glance`), and `history`'s newest line. It also keeps
  the table's greatest id, so SQLite never hands a pruned id out again: `seen_run`,
  `quarantine.run_id` and the cursor's `full_since_run` compare run ids;
- each company's latest successful run: `status`'s last success, and its next sync when
  no schedule row says it (last success + interval).
Nothing else reads an old run. `history` lists the newest runs, so it shows those within the
retention (and the two above). Time since the last full pull is not judged from the runs:
deletions unseen since a gap are kept in the cursor (`deletions_unseen_since`), and the end
of a full pull compares ids only (`store.reconcile`, `store.quarantine`). Staleness and the
schedule read `sync_schedule`, not the runs.

A run's age is its `finished_at` (every run that is not `running` has one: a killed
worker's is dated when the next run closes it), judged against a cutoff on the store's clock
(`retention_cutoff`), not a worker's. Runs are deleted oldest first, `BATCH` per
transaction, so no transaction holds the table long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select

from store.bulk import dialect_insert
from store.clock import store_time
from store.tables import SyncRun, SyncRunTotal

RUNS = SyncRun.__table__
TOTALS = SyncRunTotal.__table__
BATCH = 5_000
RUNNING = "running"


def retention_cutoff(engine: Engine, keep_days: int) -> datetime:
    """The time before which a retention of `keep_days` prunes (finished runs here, settled
    mail in `mailer.retention`): `keep_days` ago on the store's clock."""
    with engine.connect() as connection:
        return store_time(connection) - timedelta(days=keep_days)


def prune_runs(
    engine: Engine, before: datetime, *, batch: int = BATCH, stopping: Callable[[], bool] = lambda: False
) -> int:
    """Delete the runs finished before `before` but those readers still need (above), moving
    their figures into `sync_run_totals`, `batch` runs per transaction; returns how many."""
    kept, newest = _kept(engine)
    after: tuple[datetime, int] | None = None
    pruned = 0
    while not stopping():
        with engine.begin() as connection:
            page = _old_runs(connection, before, after, batch)
            chosen = [run_id for _, run_id in page if run_id not in kept and run_id <= newest]
            pruned += _move(connection, chosen)
        if len(page) < batch:
            return pruned
        after = page[-1]
    return pruned


def _kept(engine: Engine) -> tuple[set[int], int]:
    """Each company's latest run and its latest successful one, and the greatest id then.
    Read once per pass: a run that is neither never becomes one again (ids only grow), and
    runs begun since (`--now` may date one in the past) are left to the next pass."""
    latest = select(func.max(RUNS.c.id)).group_by(RUNS.c.company_id)
    latest_ok = latest.where(RUNS.c.status == "ok")
    with engine.connect() as connection:
        newest = connection.scalar(select(func.max(RUNS.c.id))) or 0
        return {*connection.scalars(latest), *connection.scalars(latest_ok)}, newest


def _old_runs(
    connection: Connection, before: datetime, after: tuple[datetime, int] | None, batch: int
) -> list[tuple[datetime, int]]:
    """The next `batch` runs finished before `before`, oldest first, after the key `after`
    (the runs kept stay where they are: each is read once per pass, not at every batch)."""
    query = select(RUNS.c.finished_at, RUNS.c.id).where(RUNS.c.finished_at < before, RUNS.c.status != RUNNING)
    if after is not None:
        at, run_id = after
        query = query.where(or_(RUNS.c.finished_at > at, and_(RUNS.c.finished_at == at, RUNS.c.id > run_id)))
    oldest_first = query.order_by(RUNS.c.finished_at, RUNS.c.id).limit(batch)
    return [tuple(row) for row in connection.execute(oldest_first)]


def _move(connection: Connection, ids: list[int]) -> int:
    """Delete the runs `ids` and add what was deleted (by this statement: a row another
    pruner took first is not returned) to the totals; returns how many were deleted."""
    if not ids:
        return 0
    gone = connection.execute(
        delete(RUNS)
        .where(RUNS.c.id.in_(ids), RUNS.c.status != RUNNING)
        .returning(RUNS.c.company_id, RUNS.c.status, RUNS.c.api_calls)
    ).all()
    runs: Counter[tuple[str, str]] = Counter()
    calls: Counter[tuple[str, str]] = Counter()
    for company_id, status, api_calls in gone:
        runs[(company_id, status)] += 1
        calls[(company_id, status)] += api_calls or 0
    if runs:
        insert = dialect_insert(connection, TOTALS)
        rows = [
            {"company_id": company, "status": status, "runs": n, "api_calls": calls[(company, status)]}
            for (company, status), n in sorted(runs.items())  # one lock order for concurrent pruners
        ]
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=[TOTALS.c.company_id, TOTALS.c.status],
                set_={
                    "runs": TOTALS.c.runs + insert.excluded.runs,
                    "api_calls": TOTALS.c.api_calls + insert.excluded.api_calls,
                },
            ),
            rows,
        )
    return len(gone)
