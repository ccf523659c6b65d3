"""`arsync status` names the worker that last ran a company and its next due time;
`arsync status --workers` lists the live workers (heartbeats in the `workers` table)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text, update

from store.db import make_engine
from store.fleet_tables import WorkerRow
from store.glance import live_worker_count
from store.owners import owner_id, owner_is_dead
from store.schedule import claim_due, release
from store.workers import dead_workers, heartbeat, live_workers, register_worker


def _ran_out(engine: Engine, worker: str) -> None:
    """`worker`'s heartbeat ran out an hour ago (a lost machine)."""
    with engine.begin() as connection:
        connection.execute(
            update(WorkerRow)
            .where(WorkerRow.worker == worker)
            .values(alive_until=datetime.now(UTC) - timedelta(hours=1))
        )


def test_status_shows_last_worker_and_next_due(cli):
    assert cli("reminders", "plan", "--dry-run")[0] == 0  # a command that may write schedules them
    engine = make_engine(cli.store_url)
    now = datetime.now(UTC)
    [claim] = claim_due(engine, "host:1:w1", now=now, company_ids=["acme"], limit=1, ttl=timedelta(minutes=2))
    assert cli("status", "--json")[1].count("running now on host:1:w1") == 1
    due = now + timedelta(minutes=15)
    release(engine, "host:1:w1", "acme", next_at=due, finished=now, status="ok")
    engine.dispose()
    code, out, _ = cli("status", "--json")
    acme = next(row for row in json.loads(out) if row["company"] == "acme")
    assert code == 0 and (acme["last_worker"], acme["next_sync"]) == ("host:1:w1", due.isoformat())
    assert "  last worker: host:1:w1\n" in cli("status")[1]


def _due_half_an_hour_ago(cli) -> tuple[Engine, datetime]:
    """acme's last (failed) sync left a due time already past: the engine, and that time."""
    assert cli("reminders", "plan", "--dry-run")[0] == 0
    engine = make_engine(cli.store_url)
    now = datetime.now(UTC)
    claim_due(engine, "host:1:w1", now=now, company_ids=["acme"], limit=1, ttl=timedelta(minutes=2))
    due = now - timedelta(minutes=30)
    release(engine, "host:1:w1", "acme", next_at=due, finished=now, status="failed")
    return engine, due


def test_a_due_time_already_past_at_the_last_sync_reads_due_now(cli):
    """A failed manual sync leaves the schedule's due time as it was, before the sync itself:
    `status` says the company is due, not a "next sync" earlier than the last one."""
    engine, due = _due_half_an_hour_ago(cli)
    register_worker(engine, "host:1:w1", concurrency=4, ttl=timedelta(minutes=2))
    engine.dispose()
    acme = next(row for row in json.loads(cli("status", "--json")[1]) if row["company"] == "acme")
    assert acme["next_sync"] == f"due now (since {due.isoformat()}): a worker syncs it at its next check"


def test_a_request_or_due_time_no_live_worker_acts_on_says_so(cli):
    """A sync requested or due while no `arsync run` is alive waits for one: `status` and
    `sync --request` say so instead of promising a worker within seconds."""
    engine, due = _due_half_an_hour_ago(cli)
    register_worker(engine, "host:2:gone", concurrency=4, ttl=timedelta(minutes=2))
    _ran_out(engine, "host:2:gone")
    code, out, err = cli("sync", "--request", "globex")
    assert (code, out) == (0, "globex: sync requested\n")
    assert "no `arsync run` worker is running; the request waits for one" in err
    rows = {row["company"]: row["next_sync"] for row in json.loads(cli("status", "--json")[1])}
    assert rows == {
        "acme": f"due now (since {due.isoformat()}); no `arsync run` worker is running to start it",
        "globex": "requested; no `arsync run` worker is running to start it",
    }
    register_worker(engine, "host:3:alive", concurrency=4, ttl=timedelta(minutes=2))
    engine.dispose()
    rows = {row["company"]: row["next_sync"] for row in json.loads(cli("status", "--json")[1])}
    assert rows == {
        "acme": f"due now (since {due.isoformat()}): a worker syncs it at its next check",
        "globex": "requested (a worker starts it within seconds)",
    }
    code, _, err = cli("sync", "--request", "globex")
    assert code == 0 and err == ""


def test_status_only_reads_the_store(cli):
    code, out, _ = cli("status", "--json")
    assert code == 0 and {row["next_sync"] for row in json.loads(out)} == {"at the next run"}
    engine = make_engine(cli.store_url)
    with engine.connect() as connection:  # nothing registered or scheduled by looking
        assert connection.execute(text("SELECT COUNT(*) FROM sync_schedule")).scalar() == 0
        assert connection.execute(text("SELECT COUNT(*) FROM companies")).scalar() == 0
    engine.dispose()


def test_status_workers_lists_the_live_ones(cli):
    engine = make_engine(cli.store_url)
    ttl = timedelta(minutes=2)
    register_worker(engine, "host:1:alive", concurrency=4, ttl=ttl)
    heartbeat(engine, "host:1:alive", ["globex", "acme"], ttl=ttl)
    register_worker(engine, "host:2:dead", concurrency=4, ttl=ttl)
    _ran_out(engine, "host:2:dead")
    [alive] = live_workers(engine)
    assert alive["worker"] == "host:1:alive"
    engine.dispose()
    code, out, _ = cli("status", "--workers", "--json")
    [worker] = json.loads(out)
    assert code == 0 and worker["worker"] == "host:1:alive" and worker["running"] == ["acme", "globex"]
    assert worker["started_at"] == alive["started_at"].isoformat()
    code, out, _ = cli("status", "--workers")
    assert out.startswith("host:1:alive  since ") and out.endswith("running 2/4: acme, globex\n")


def test_a_worker_of_this_host_that_exited_is_not_live_though_its_heartbeat_holds(cli):
    """SIGKILLed: its heartbeat holds for two minutes more, but a process of this host that
    has exited is known dead at once (as leases already know): not listed, not counted, and
    its mail claims can be settled now."""
    dead = owner_id(_exited_pid(), "x")
    engine = make_engine(cli.store_url)
    register_worker(engine, dead, concurrency=4, ttl=timedelta(minutes=2))
    assert live_workers(engine) == [] and live_worker_count(engine) == 0
    assert dead_workers(engine) == [dead]
    assert json.loads(cli("status", "--workers", "--json")[1]) == []
    # the company it was syncing: interrupted, not "running now", though the claim holds
    assert cli("reminders", "plan", "--dry-run")[0] == 0  # a command that may write schedules acme
    claimed_at = datetime.now(UTC)
    assert claim_due(engine, dead, now=claimed_at, company_ids=["acme"], limit=1, ttl=timedelta(minutes=2))
    engine.dispose()
    [acme] = [row for row in json.loads(cli("status", "--json")[1]) if row["company"] == "acme"]
    assert acme["next_sync"].startswith(f"interrupted on {dead} (exited)"), acme["next_sync"]
    code, _, err = cli("sync", "--request", "acme")
    assert code == 0 and "no `arsync run` worker is running" in err


def test_a_worker_of_another_pid_namespace_is_never_judged_by_our_pids():
    """Containers sharing a hostname (host network, one `hostname:` for every replica) have
    pids of their own: an id of another machine boot or pid namespace, or an old id without
    one, is left to its heartbeat, even when its pid means nothing here."""
    gone = _exited_pid()
    ours = owner_id(gone, "x")
    host, pid, tag, space = ours.split(":")
    assert owner_is_dead(ours)
    assert not owner_is_dead(f"{host}:{pid}:{tag}:{'0' * 8 if space != '0' * 8 else '1' * 8}")
    assert not owner_is_dead(f"{host}:{pid}:{tag}")  # an id from before spaces were part of it
    assert not owner_is_dead(f"elsewhere:{pid}:{tag}:{space}")


def _exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid names no process now
    return child.pid


def test_daemon_concurrency_is_validated_like_every_setting(cli):
    cli.config.write_text(cli.config.read_text() + "\n[daemon]\nconcurrency = 0\n")
    code, _, err = cli("status")
    assert code == 2
    assert err.endswith("daemon.concurrency: Input should be greater than or equal to 1\n")
