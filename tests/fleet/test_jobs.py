"""Periodic fleet jobs: one claim per occurrence across workers; the daily health job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from store.crypto import SecretBox
from store.health import SCORES
from store.jobs import AT_ONCE, MIN_GAP, bring_forward, claim_job, due_jobs, ensure_jobs, finish_job
from store.tables import metadata
from sync.app import App
from sync.config import parse_config
from sync.jobs import JobContext, health
from tests.foundation.test_health_store import NOW, books

TTL = timedelta(minutes=2)


def test_one_worker_runs_each_occurrence(engine):
    ensure_jobs(engine, ["dispatch"], now=NOW)
    ensure_jobs(engine, ["dispatch"], now=NOW + timedelta(hours=1))  # kept as it was
    every = timedelta(minutes=1)
    assert claim_job(engine, "dispatch", "w1", now=NOW, interval=every, ttl=TTL)
    assert not claim_job(engine, "dispatch", "w2", now=NOW, interval=every, ttl=TTL)
    finish_job(engine, "dispatch", "w1")
    assert not claim_job(engine, "dispatch", "w2", now=NOW + timedelta(seconds=30), interval=every, ttl=TTL)
    assert claim_job(engine, "dispatch", "w2", now=NOW + every, interval=every, ttl=TTL)
    # w2 dies holding it: the next occurrence goes to another worker once the claim expires
    later = NOW + every * 2
    age_job_claims(engine, every)  # as much passes on the store's clock
    assert not claim_job(engine, "dispatch", "w3", now=later, interval=every, ttl=TTL)
    age_job_claims(engine, TTL + timedelta(seconds=1) - every)
    assert claim_job(
        engine, "dispatch", "w3", now=NOW + every + TTL + timedelta(seconds=1), interval=every, ttl=TTL
    )


def test_due_jobs_reads_what_a_claim_would_take(engine):
    every = timedelta(minutes=1)
    ensure_jobs(engine, ["dispatch", "reminders"], now=NOW)
    due = due_jobs(engine, ["dispatch", "reminders", "unknown"], now=NOW)
    assert sorted(due) == ["dispatch", "reminders"]
    assert claim_job(engine, "dispatch", "w1", now=NOW, interval=every, ttl=TTL)
    assert due_jobs(engine, ["dispatch", "reminders"], now=NOW) == ["reminders"]  # held, and not due
    finish_job(engine, "dispatch", "w1")
    assert due_jobs(engine, ["dispatch"], now=NOW + timedelta(seconds=59)) == []
    assert due_jobs(engine, ["dispatch"], now=NOW + every) == ["dispatch"]
    assert due_jobs(engine, [], now=NOW + every) == []


def due_at(engine, name: str):
    jobs = metadata.tables["fleet_jobs"]
    with engine.connect() as connection:
        return connection.scalar(select(jobs.c.next_due_at).where(jobs.c.name == name))


def test_a_job_brought_forward_runs_at_once_but_never_twice_within_the_gap(engine):
    """A portal request brings the dispatch forward; a flood of them wakes the workers once
    per run (nothing to change while it is due) and runs it at most every `MIN_GAP`."""
    every = timedelta(minutes=1)
    ensure_jobs(engine, ["dispatch"], now=NOW)
    assert claim_job(engine, "dispatch", "w1", now=NOW, interval=every, ttl=TTL)
    finish_job(engine, "dispatch", "w1")
    with engine.begin() as connection:
        assert bring_forward(connection, "dispatch")
        assert not bring_forward(connection, "dispatch")  # already due: no second wake-up
    assert due_at(engine, "dispatch") == AT_ONCE
    soon = NOW + MIN_GAP / 2
    assert due_jobs(engine, ["dispatch"], now=soon) == []
    assert not claim_job(engine, "dispatch", "w2", now=soon, interval=every, ttl=TTL)
    gap = NOW + MIN_GAP
    assert due_jobs(engine, ["dispatch"], now=gap) == ["dispatch"]
    assert claim_job(engine, "dispatch", "w2", now=gap, interval=every, ttl=TTL)
    assert due_at(engine, "dispatch") == gap + every
    with engine.begin() as connection:  # brought forward while it runs: due again after it
        assert bring_forward(connection, "dispatch")
    assert not claim_job(engine, "dispatch", "w1", now=gap + MIN_GAP, interval=every, ttl=TTL)  # held
    finish_job(engine, "dispatch", "w2")
    assert claim_job(engine, "dispatch", "w1", now=gap + MIN_GAP, interval=every, ttl=TTL)


def test_a_last_run_stamped_by_a_clock_ahead_does_not_hold_the_job(engine):
    """The worker that ran it last had its clock two minutes ahead (then stopped): the gap
    must not keep the others from a job brought forward until their clocks catch up."""
    every = timedelta(minutes=1)
    ensure_jobs(engine, ["dispatch"], now=NOW)
    ahead = NOW + timedelta(minutes=2)
    assert claim_job(engine, "dispatch", "fast", now=ahead, interval=every, ttl=TTL)
    finish_job(engine, "dispatch", "fast")
    with engine.begin() as connection:
        assert bring_forward(connection, "dispatch")
    assert claim_job(engine, "dispatch", "w1", now=NOW + timedelta(seconds=1), interval=every, ttl=TTL)


def test_the_hourly_health_job_recomputes_every_company(engine):
    books(engine)
    config = parse_config({"companies": [{"id": "co", "name": "Co", "connection": {"kind": "quickbooks"}}]})
    app = App(config=config, engine=engine, box=SecretBox(None))
    health(JobContext(app, config, lambda: NOW, lambda: False, "w1"))
    with engine.connect() as connection:
        assert (
            connection.scalar(select(func.count()).select_from(SCORES).where(SCORES.c.company_id == "co"))
            >= 2
        )


def age_job_claims(engine, by: timedelta) -> None:
    """Let `by` pass on the store's clock for the job claims held now: their expiry moves back."""
    jobs = metadata.tables["fleet_jobs"]
    with engine.begin() as connection:
        held = connection.execute(
            select(jobs.c.name, jobs.c.claimed_until).where(jobs.c.claimed_until.is_not(None))
        )
        for name, until in held.all():
            connection.execute(update(jobs).where(jobs.c.name == name).values(claimed_until=until - by))


def test_a_worker_whose_clock_runs_ahead_never_takes_a_job_a_live_worker_holds(engine):
    """Its clock 5 minutes ahead, the job is due again for it, but the live worker's claim is
    judged on the store's clock: one run at a time. A dead worker's claim it still takes once
    that has expired."""
    every = timedelta(minutes=1)
    on_time = datetime.now(UTC)
    ahead = on_time + timedelta(minutes=5)
    ensure_jobs(engine, ["dispatch"], now=on_time)
    assert claim_job(engine, "dispatch", "live", now=on_time, interval=every, ttl=TTL)
    assert due_jobs(engine, ["dispatch"], now=ahead) == []
    assert not claim_job(engine, "dispatch", "ahead", now=ahead, interval=every, ttl=TTL)
    age_job_claims(engine, TTL - timedelta(seconds=30))  # not renewed for 90 s: still held
    assert not claim_job(engine, "dispatch", "ahead", now=ahead, interval=every, ttl=TTL)
    age_job_claims(engine, timedelta(seconds=31))  # expired a second ago on the store's clock
    assert due_jobs(engine, ["dispatch"], now=ahead) == ["dispatch"]
    assert claim_job(engine, "dispatch", "ahead", now=ahead, interval=every, ttl=TTL)
