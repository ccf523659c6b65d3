"""Settled outbox messages past `[store] keep_outbox_days` are pruned (`mailer.retention`): what
readers still need stays, the reminder ledger keeps every pair, and two pruners never clash."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from alembic import command
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, inspect, select

from mailer.admin import resend
from mailer.outbox import OUTBOX
from mailer.retention import LEDGER, _delete, _old_messages, prune_outbox
from mailer.uninvite import INVITATIONS
from store.crypto import SecretBox
from store.jobs import claim_job, ensure_jobs, finish_job
from sync.app import App
from sync.config import parse_config
from sync.daemon import Daemon
from sync.http.metrics import registry_for
from sync.jobs import JOBS, JobContext
from tests.foundation.schema import migrate

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
BEFORE = NOW - timedelta(days=90)

# name: (status, days since written, days since last claimed, days since sent, kind, invitation)
MESSAGES = {
    "sent": ("sent", 200, 200, 200, "reminder", None),
    "dropped": ("dropped", 200, None, None, "reminder", None),
    "failed": ("failed", 200, 199, None, "reminder", None),
    "queued": ("queued", 200, None, None, "reminder", None),
    "claimed": ("claimed", 200, 200, None, "reminder", None),
    "sending": ("sending", 200, 200, None, "reminder", None),
    "in_doubt": ("in_doubt", 200, 200, None, "reminder", None),
    "sent_lately": ("sent", 10, 10, 10, "reminder", None),
    "resent_lately": ("sent", 200, 5, 5, "reminder", None),  # failed, then resent by an admin
    "tried_lately": ("failed", 200, 20, None, "reminder", None),
    "invitation_open": ("sent", 200, 200, 200, "invitation", "open"),
    "invitation_superseded": ("sent", 200, 200, 200, "invitation", "superseded"),
    "invitation_accepted": ("sent", 200, 200, 200, "invitation", "accepted"),
    "invitation_without_one": ("dropped", 200, None, None, "invitation", None),
    "newest": ("sent", 300, 300, 300, "reminder", None),  # the table's greatest id
}
KEPT = {
    "queued",
    "claimed",
    "sending",
    "in_doubt",
    "sent_lately",
    "resent_lately",
    "tried_lately",
    "invitation_open",
    "newest",
}
INVITATIONS_GONE = ("invitation_superseded", "invitation_accepted", "invitation_without_one")
# (invoice ref, offset): (status, the message that reminds of it)
LEDGER_ROWS = {("i1", 0): ("sent", "sent"), ("i2", 7): ("skipped", "dropped"), ("i3", 0): ("sent", "queued")}


def ago(days: int | None, now: datetime = NOW) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def add_message(connection, name: str, company: str, spec: tuple, now: datetime = NOW) -> int:
    status, written, claimed, sent, kind, invitation = spec
    key = f"invitation:{company}-{name}" if kind == "invitation" else f"reminder:{company}:{name}"
    if invitation is not None:
        connection.execute(
            insert(INVITATIONS).values(
                company_id=company,
                customer_ref="c1",
                email=f"{name}@example.com",
                token_hash=f"{company}-{name}",
                created_at=ago(written, now),
                expires_at=ago(written - 14, now),
                accepted_at=ago(written - 1, now) if invitation == "accepted" else None,
                superseded_at=ago(written - 1, now) if invitation == "superseded" else None,
            )
        )
    return connection.execute(
        insert(OUTBOX)
        .values(
            company_id=company,
            kind=kind,
            automatic=True,
            recipient=f"{name}@example.com",
            subject=name,
            message_id=f"<{company}.{name}@example.com>",
            payload="Subject: " + name + "\n\n" + "x" * 1000,
            dedupe_key=key,
            not_before=ago(written, now),
            status=status,
            attempts=0 if claimed is None else 1,
            created_at=ago(written, now),
            claimed_at=ago(claimed, now),
            claimed_by=None if claimed is None else "w1",
            sent_at=ago(sent, now),
        )
        .returning(OUTBOX.c.id)
    ).scalar_one()


def add_outbox(engine, messages=MESSAGES, company: str = "acme", now: datetime = NOW) -> dict[str, int]:
    with engine.begin() as connection:
        ids = {name: add_message(connection, name, company, spec, now) for name, spec in messages.items()}
        for (ref, offset), (status, name) in LEDGER_ROWS.items():
            if name in ids:
                connection.execute(
                    insert(LEDGER).values(
                        company_id=company,
                        invoice_ref=ref,
                        offset_days=offset,
                        status=status,
                        outbox_id=ids[name],
                        recorded_at=now,
                    )
                )
    return ids


def stored(engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(select(OUTBOX.c.subject)))


def ledger(engine) -> dict[tuple[str, int], tuple[str, int | None]]:
    with engine.connect() as connection:
        query = select(LEDGER.c.invoice_ref, LEDGER.c.offset_days, LEDGER.c.status, LEDGER.c.outbox_id)
        return {(ref, offset): (status, to) for ref, offset, status, to in connection.execute(query)}


def test_settled_messages_past_the_retention_go_and_the_ones_readers_need_stay(engine):
    ids = add_outbox(engine)

    assert prune_outbox(engine, BEFORE) == len(MESSAGES) - len(KEPT)

    assert stored(engine) == KEPT
    # every pair stays on record, as it was; the pruned messages' ones name no message now
    assert ledger(engine) == {
        ("i1", 0): ("sent", None),
        ("i2", 7): ("skipped", None),
        ("i3", 0): ("sent", ids["queued"]),
    }
    assert prune_outbox(engine, BEFORE) == 0


def scrape(engine) -> dict[tuple[str, tuple[str, ...]], float]:
    text = generate_latest(registry_for(engine, lambda: ["acme"])).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_the_messages_kept_and_their_states(engine):
    add_outbox(engine)
    before = scrape(engine)

    assert prune_outbox(engine, BEFORE, batch=2) == len(MESSAGES) - len(KEPT)  # kept ones between batches

    after = scrape(engine)

    def outbox(figures, state):
        return figures[("arsync_outbox_messages", (("company", "acme"), ("state", state)))]

    # `arsync_outbox_messages` is a gauge of the messages there now
    assert {state: outbox(before, state) for state in ("sent", "dropped", "failed")} == {
        "sent": 7,
        "dropped": 2,
        "failed": 2,
    }
    assert {state: outbox(after, state) for state in ("sent", "dropped", "failed")} == {
        "sent": 4,
        "dropped": 0,
        "failed": 1,
    }
    unchanged = {k: v for k, v in before.items() if k[0] != "arsync_outbox_messages"}
    assert {k: after[k] for k in unchanged} == unchanged  # in doubt, the counters, the rest
    for state in ("queued", "claimed", "sending", "in_doubt"):
        assert outbox(after, state) == outbox(before, state) == 1


def test_two_pruners_at_once_delete_each_message_once(engine):
    old = {f"m{n}": ("sent", 200 - n % 50, 200, 200, "reminder", None) for n in range(150)}
    for company in ("co1", "co2"):
        add_outbox(engine, old, company)
    with engine.begin() as connection:  # each message reminded of its own pair
        for outbox_id, company in connection.execute(select(OUTBOX.c.id, OUTBOX.c.company_id)):
            connection.execute(
                insert(LEDGER).values(
                    company_id=company,
                    invoice_ref=f"i{outbox_id}",
                    offset_days=0,
                    status="sent",
                    outbox_id=outbox_id,
                    recorded_at=NOW,
                )
            )
    start = threading.Barrier(2)
    pruned: list[int] = []

    def pruner() -> None:
        start.wait()
        pruned.append(prune_outbox(engine, BEFORE, batch=7))

    threads = [threading.Thread(target=pruner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(pruned, reverse=True)[0] > 0 and sum(pruned) == 299  # all but the newest
    with engine.connect() as connection:
        [newest] = connection.scalars(select(OUTBOX.c.id))
    pairs = ledger(engine)
    assert len(pairs) == 300
    assert {outbox_id for _, outbox_id in pairs.values()} == {None, newest}


def test_a_message_resent_or_deleted_after_it_was_chosen_stays_or_counts_once(engine):
    ids = add_outbox(engine)
    with engine.connect() as connection:
        chosen = [message_id for _, message_id in _old_messages(connection, BEFORE, ids["newest"], None, 100)]
    assert sorted(chosen) == sorted(ids[name] for name in ("sent", "dropped", "failed", *INVITATIONS_GONE))
    resend(engine, "acme", ids["failed"])  # an admin's, between the choice and the delete
    with engine.begin() as connection:
        assert _delete(connection, chosen, BEFORE, ids["newest"]) == len(chosen) - 1
    with engine.begin() as connection:  # a pruner whose choice another has deleted since
        assert _delete(connection, chosen, BEFORE, ids["newest"]) == 0
    assert stored(engine) == KEPT | {"failed"}


def test_a_stopping_worker_prunes_no_further_batch(engine):
    add_outbox(engine)
    assert prune_outbox(engine, BEFORE, stopping=lambda: True) == 0
    assert stored(engine) == set(MESSAGES)


def test_the_hourly_job_prunes_on_the_store_clock(engine):
    config = parse_config({"store": {"keep_outbox_days": 30}})
    app = App(config=config, engine=engine, box=SecretBox(None))
    real_now = datetime.now(UTC)  # the cutoff is on the store's clock, whatever a worker's says
    messages = {f"d{days}": ("sent", days, days, days, "reminder", None) for days in (40, 31, 29, 2)}
    add_outbox(engine, messages, now=real_now)
    job = next(job for job in JOBS if job.name == "prune_outbox")
    assert job.every == timedelta(hours=1)
    ensure_jobs(engine, [job.name], now=NOW)
    assert claim_job(engine, job.name, "w1", now=NOW, interval=job.every, ttl=timedelta(minutes=2))
    job.run(JobContext(app, config, lambda: NOW - timedelta(days=365), lambda: False, "w1"))
    finish_job(engine, job.name, "w1")

    assert stored(engine) == {"d29", "d2"}


def test_the_daemon_runs_the_job(engine):
    config = parse_config({"store": {"keep_outbox_days": 30}})
    daemon = Daemon(App(config=config, engine=engine, box=SecretBox(None)))
    messages = {f"d{days}": ("sent", days, days, days, "reminder", None) for days in (400, 300, 200, 100, 1)}
    add_outbox(engine, messages, now=datetime.now(UTC))
    try:
        deadline = time.monotonic() + 30
        while stored(engine) != {"d1"} and time.monotonic() < deadline:
            daemon.step()
            time.sleep(0.1)
    finally:
        daemon.stopping.set()
        daemon.job_pool.shutdown(wait=True)
        daemon.pool.shutdown(wait=True)
    assert stored(engine) == {"d1"}


def test_the_migration_down_drops_the_index_and_keeps_the_messages(store_url):
    from store.db import make_engine, upgrade

    engine = make_engine(store_url)
    upgrade(engine)
    add_outbox(engine)
    migrate(engine, command.downgrade, "0018_sync_run_totals")
    assert "ix_outbox_created_at" not in {i["name"] for i in inspect(engine).get_indexes("outbox")}
    upgrade(engine)
    assert "ix_outbox_created_at" in {i["name"] for i in inspect(engine).get_indexes("outbox")}
    assert prune_outbox(engine, BEFORE) == len(MESSAGES) - len(KEPT)
    engine.dispose()
