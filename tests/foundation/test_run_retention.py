"""Sync runs past `[store] keep_runs_days` are pruned (`store.retention`): the runs every reader
still needs stay, `/metrics` counts the same before and after, and nothing is counted twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import insert, inspect, select

from store.crypto import SecretBox
from store.definitions import remove_definition
from store.glance import company_glance
from store.jobs import claim_job, ensure_jobs, finish_job
from store.metrics import store_counts
from store.reports import sync_runs
from store.retention import RUNS, TOTALS, _move, prune_runs
from sync.app import App
from sync.config import parse_config
from sync.jobs import JOBS, JobContext
from tests.foundation.schema import migrate

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
BEFORE = NOW - timedelta(days=90)

# per company, its runs oldest first: (days ago, status), and which of them stay
FLEET = {
    # a pruned history: its latest run and latest success are recent
    "busy": [
        (200, "ok"),
        (190, "failed"),
        (150, "ok"),
        (120, "interrupted"),
        (100, "failed"),
        (10, "ok"),
        (5, "failed"),
    ],
    # no run since the retention: its latest run and its latest success stay, old as they are
    "dormant": [(200, "ok"), (180, "failed"), (170, "interrupted")],
    # a worker killed mid-run, never closed: `running` stays, whatever its age
    "killed": [(300, "failed"), (250, "running")],
    # its latest success is old, its latest run recent
    "slipping": [(95, "ok"), (94, "failed"), (89, "failed")],
}
KEPT = {
    "busy": [(10, "ok"), (5, "failed")],
    "dormant": [(200, "ok"), (170, "interrupted")],
    "killed": [(250, "running")],
    "slipping": [(95, "ok"), (89, "failed")],
}


def add_runs(engine, fleet=FLEET, now=NOW) -> None:
    """Runs as the syncs leave them (in the order begun), each having made 3 API calls."""
    with engine.begin() as connection:
        for company, runs in fleet.items():
            for days, status in runs:
                started = now - timedelta(days=days)
                finished = None if status == "running" else started + timedelta(minutes=2)
                connection.execute(
                    insert(RUNS).values(
                        company_id=company,
                        started_at=started,
                        finished_at=finished,
                        status=status,
                        full=False,
                        api_calls=3,
                        worker="w1",
                    )
                )


def stored(engine, now=NOW) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    with engine.connect() as connection:
        query = select(RUNS.c.company_id, RUNS.c.started_at, RUNS.c.status).order_by(RUNS.c.id)
        for company, started, status in connection.execute(query):
            found.setdefault(company, []).append(((now - started).days, status))
    return found


def test_runs_past_the_retention_go_and_the_ones_readers_need_stay(engine):
    add_runs(engine)
    seen = {company: company_glance(engine, company) for company in FLEET}
    newest = sync_runs(engine, limit=1)

    assert prune_runs(engine, BEFORE) == 8

    assert stored(engine) == KEPT
    for company in FLEET:  # `status`: last sync, its status and error, last success
        glance = company_glance(engine, company)
        assert glance["last_run"] == seen[company]["last_run"]
        assert glance["last_success"] == seen[company]["last_success"]
    assert sync_runs(engine, limit=1) == newest  # `history`'s newest line


def test_metrics_count_the_same_before_and_after_pruning(engine):
    add_runs(engine)
    before = store_counts(engine)
    assert before.syncs[("busy", "ok")] == 3 and before.api_calls["busy"] == 21

    assert prune_runs(engine, BEFORE, batch=2) == 8  # kept runs between batches, too

    after = store_counts(engine)
    assert (after.syncs, after.api_calls) == (before.syncs, before.api_calls)
    with engine.connect() as connection:
        totals = {(c, s): (n, calls) for c, s, n, calls in connection.execute(select(TOTALS))}
    assert totals[("busy", "ok")] == (2, 6) and totals[("dormant", "failed")] == (1, 3)


def test_pruning_again_or_twice_at_once_never_counts_a_run_twice(engine):
    many = {
        f"co{i}": [(days, "ok" if days % 3 else "failed") for days in range(200, 80, -1)] for i in range(3)
    }
    add_runs(engine, many)
    before = store_counts(engine)
    with engine.connect() as connection:
        chosen = list(connection.scalars(select(RUNS.c.id).where(RUNS.c.finished_at < BEFORE)))
    start = threading.Barrier(2)
    pruned: list[int] = []

    def pruner() -> None:
        start.wait()
        pruned.append(prune_runs(engine, BEFORE, batch=7))

    threads = [threading.Thread(target=pruner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(pruned) == 3 * 110  # its latest run and latest success are recent
    assert prune_runs(engine, BEFORE) == 0
    with engine.begin() as connection:  # a pruner whose choice another has deleted since
        assert _move(connection, chosen) == 0
    after = store_counts(engine)
    assert (after.syncs, after.api_calls) == (before.syncs, before.api_calls)


def test_the_hourly_job_prunes_on_the_store_clock_and_purge_removes_the_totals(engine):
    config = parse_config({"store": {"keep_runs_days": 30}})
    app = App(config=config, engine=engine, box=SecretBox(None))
    real_now = datetime.now(UTC)  # the cutoff is on the store's clock, whatever a worker's says
    add_runs(engine, {"co": [(40, "ok"), (35, "failed"), (31, "ok"), (29, "failed")]}, now=real_now)
    job = next(job for job in JOBS if job.name == "prune_runs")
    assert job.every == timedelta(hours=1)
    ensure_jobs(engine, [job.name], now=NOW)
    assert claim_job(engine, job.name, "w1", now=NOW, interval=job.every, ttl=timedelta(minutes=2))
    job.run(JobContext(app, config, lambda: NOW - timedelta(days=365), lambda: False, "w1"))
    finish_job(engine, job.name, "w1")

    assert stored(engine, real_now) == {"co": [(31, "ok"), (29, "failed")]}
    assert store_counts(engine).syncs == {("co", "ok"): 2, ("co", "failed"): 2}
    remove_definition(engine, "co", purge=True)
    assert store_counts(engine).syncs == {}


def test_a_stopping_worker_prunes_no_further_batch(engine):
    add_runs(engine)
    assert prune_runs(engine, BEFORE, stopping=lambda: True) == 0
    assert stored(engine) == FLEET


def test_the_migration_down_drops_the_totals_and_keeps_the_runs(store_url):
    from store.db import make_engine, upgrade

    engine = make_engine(store_url)
    upgrade(engine)
    add_runs(engine)
    migrate(engine, command.downgrade, "0017_quarantine_outstanding")
    assert "sync_run_totals" not in inspect(engine).get_table_names()
    assert "ix_sync_runs_finished_at" not in {i["name"] for i in inspect(engine).get_indexes("sync_runs")}
    upgrade(engine)
    assert prune_runs(engine, BEFORE) == 8
    engine.dispose()
