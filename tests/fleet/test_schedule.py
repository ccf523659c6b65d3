"""The sync schedule on both backends: requests coalesce, claims are exclusive and expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from store.companies import CompanyRow, register_companies
from store.fleet_tables import SyncSchedule
from store.schedule import (
    TURNED_AWAY,
    UnknownCompany,
    claim_due,
    ensure_scheduled,
    next_due,
    record_manual_sync,
    release,
    renew,
    request_sync,
    schedule_rows,
)
from sync.http.metrics import registry_for

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=2)
IDS = ["a", "b", "c"]


@pytest.fixture
def scheduled(engine):
    register_companies(engine, [CompanyRow(cid, cid.upper(), "UTC", "scripted") for cid in IDS])
    ensure_scheduled(engine, IDS, now=T0)
    return engine


def age_claims(engine, by: timedelta) -> None:
    """Let `by` pass on the store's clock for the claims held now: their expiry moves back."""
    with engine.begin() as connection:
        held = connection.execute(
            select(SyncSchedule.company_id, SyncSchedule.claimed_until).where(
                SyncSchedule.claimed_until.is_not(None)
            )
        ).all()
        for company_id, until in held:
            connection.execute(
                update(SyncSchedule)
                .where(SyncSchedule.company_id == company_id)
                .values(claimed_until=until - by)
            )


class Passing:
    """Business time (`now`) and the store's clock moving on together, as in a fleet whose
    clocks agree: claims (on the store's clock) age by as much as `now` advances."""

    def __init__(self, engine, now: datetime) -> None:
        self.engine, self.now = engine, now

    def to(self, at: datetime) -> datetime:
        age_claims(self.engine, at - self.now)
        self.now = at
        return at


def test_requests_before_the_sync_starts_coalesce_into_one(scheduled):
    later = T0 - timedelta(minutes=30)  # nothing due yet at `later`: only requests are wanted
    assert request_sync(scheduled, "b", now=later, reason="webhook") is True
    assert request_sync(scheduled, "b", now=later + timedelta(seconds=1), reason="webhook") is False
    [claim] = claim_due(scheduled, "w1", now=later + timedelta(seconds=2), company_ids=IDS, limit=4, ttl=TTL)
    assert (claim.company_id, claim.requested, claim.reason, claim.due_at) == ("b", True, "webhook", later)
    assert claim.next_due_at == T0
    # a request made while it runs asks for one more sync after it
    assert request_sync(scheduled, "b", now=later + timedelta(seconds=3)) is True


def test_an_unknown_company_cannot_be_requested(scheduled):
    with pytest.raises(UnknownCompany, match="'nope'"):
        request_sync(scheduled, "nope", now=T0)


def test_requested_go_first_then_oldest_due_and_no_one_claims_twice(scheduled):
    ensure_scheduled(scheduled, IDS, now=T0 + timedelta(hours=1))  # existing rows are kept
    request_sync(scheduled, "c", now=T0 + timedelta(seconds=5))
    now = T0 + timedelta(minutes=1)
    first = claim_due(scheduled, "w1", now=now, company_ids=IDS, limit=2, ttl=TTL)
    assert [c.company_id for c in first] == ["c", "a"]
    second = claim_due(scheduled, "w2", now=now, company_ids=IDS, limit=4, ttl=TTL)
    assert [c.company_id for c in second] == ["b"]
    assert claim_due(scheduled, "w3", now=now, company_ids=IDS, limit=4, ttl=TTL) == []
    assert schedule_rows(scheduled)["c"]["last_worker"] == "w1"


def test_a_claim_not_renewed_expires_and_another_worker_takes_it(scheduled):
    time = Passing(scheduled, T0)
    claim_due(scheduled, "dead", now=T0, company_ids=["a"], limit=1, ttl=TTL)
    time.to(T0 + timedelta(minutes=1))
    renew(scheduled, "dead", ["a"], ttl=TTL)
    assert _claim_at(scheduled, "w2", time.to(T0 + timedelta(minutes=2, seconds=30))) == []
    taken = claim_due(
        scheduled,
        "w2",
        now=time.to(T0 + timedelta(minutes=3, seconds=1)),
        company_ids=["a"],
        limit=1,
        ttl=TTL,
    )
    assert [c.company_id for c in taken] == ["a"]
    # the dead worker's late release changes nothing: the claim is no longer its own
    assert not release(scheduled, "dead", "a", next_at=T0 + TTL, finished=T0, status="ok")
    assert schedule_rows(scheduled)["a"]["claimed_by"] == "w2"


def test_a_requested_run_whose_worker_died_is_taken_again_once_its_claim_expires(scheduled):
    """The claim took the request with it and the company is not due for an hour: the run
    the request asked for is still unfinished, so another worker takes it when it expires."""
    early = T0 - timedelta(hours=1)
    time = Passing(scheduled, early)
    request_sync(scheduled, "b", now=early)
    [claim] = claim_due(scheduled, "dead", now=early, company_ids=IDS, limit=4, ttl=TTL)
    assert claim.requested and schedule_rows(scheduled)["b"]["requested_at"] is None
    assert _claim_at(scheduled, "w2", time.to(early + TTL - timedelta(seconds=1)), IDS) == []
    [taken] = claim_due(
        scheduled, "w2", now=time.to(early + TTL + timedelta(seconds=1)), company_ids=IDS, limit=4, ttl=TTL
    )
    assert taken.company_id == "b"
    assert schedule_rows(scheduled)["b"]["claimed_by"] == "w2"


def test_a_stream_of_requests_never_keeps_a_due_company_waiting_past_a_minute(scheduled):
    """Requests go first, but not before a company due for over a minute (`STARVING`):
    one busy company's webhooks cannot starve the others' scheduled syncs."""
    for minutes, expected in ((0.5, "c"), (1.5, "a")):
        now = T0 + timedelta(minutes=minutes)
        request_sync(scheduled, "c", now=now - timedelta(seconds=1))
        [claim] = claim_due(scheduled, "w1", now=now, company_ids=IDS, limit=1, ttl=TTL)
        assert claim.company_id == expected, minutes
        release(scheduled, "w1", expected, next_at=now + timedelta(hours=1), finished=now, status="ok")


def test_a_request_turned_away_by_a_manual_sync_is_served_after_it(scheduled):
    """`arsync sync b` holds the lease; a webhook's request comes in and the worker that
    claims it is turned away (skipped). The manual sync may have read the books before the
    change: when it ends, the request is pending again, not pushed an interval away."""
    started = T0 + timedelta(minutes=1)
    request_sync(scheduled, "b", now=started + timedelta(seconds=5))
    [claim] = claim_due(
        scheduled, "w1", now=started + timedelta(seconds=6), company_ids=["b"], limit=1, ttl=TTL
    )
    assert claim.requested
    turned = started + timedelta(seconds=7)
    release(scheduled, "w1", "b", next_at=turned + timedelta(minutes=1), finished=turned, status="skipped")
    finished = started + timedelta(minutes=2)
    record_manual_sync(
        scheduled, "b", "cli", started=started, finished=finished, status="ok", interval=timedelta(minutes=15)
    )
    row = schedule_rows(scheduled)["b"]
    assert (row["requested_at"], row["request_reason"]) == (finished, TURNED_AWAY)
    [again] = claim_due(scheduled, "w1", now=finished, company_ids=["b"], limit=1, ttl=TTL)
    assert again.requested
    # a manual sync no worker waited for leaves no request behind
    record_manual_sync(
        scheduled, "a", "cli", started=started, finished=finished, status="ok", interval=timedelta(minutes=15)
    )
    assert schedule_rows(scheduled)["a"]["requested_at"] is None


def due_at(engine, times: dict[str, datetime]) -> None:
    with engine.begin() as connection:
        for company_id, at in times.items():
            connection.execute(
                update(SyncSchedule).where(SyncSchedule.company_id == company_id).values(next_due_at=at)
            )


def test_a_request_never_demotes_a_company_already_long_overdue(scheduled):
    due_at(scheduled, {"a": T0, "b": T0 + timedelta(minutes=8), "c": T0 + timedelta(hours=8)})
    now = T0 + timedelta(minutes=10)
    request_sync(scheduled, "a", now=now - timedelta(seconds=1), reason="webhook")
    [first] = claim_due(scheduled, "w1", now=now, company_ids=IDS, limit=1, ttl=TTL)
    assert first.company_id == "a"  # wanted for 10 minutes, not 1 second


def test_while_the_fleet_is_behind_a_request_waits_only_for_what_was_wanted_before_it(scheduled):
    """Six companies overdue by minutes, one slot: the request goes after them, not after
    every company that comes due meanwhile (first come, first served), and before any
    company due less than a minute."""
    more = [f"x{n}" for n in range(4)]
    register_companies(scheduled, [CompanyRow(cid, cid.upper(), "UTC", "scripted") for cid in more])
    ensure_scheduled(scheduled, more, now=T0)
    due_at(scheduled, {"c": T0 + timedelta(hours=8)})
    now = T0 + timedelta(minutes=5)
    request_sync(scheduled, "c", now=now)
    served = []
    for tick in range(8):
        at = now + timedelta(seconds=10 * tick + 1)
        [got] = claim_due(scheduled, "w1", now=at, company_ids=[*IDS, *more], limit=1, ttl=TTL)
        served.append(got.company_id)
        release(scheduled, "w1", got.company_id, next_at=at + timedelta(seconds=20), finished=at, status="ok")
    assert served[:7] == ["a", "b", "x0", "x1", "x2", "x3", "c"]


def test_a_manual_sync_over_an_abandoned_claim_settles_it(scheduled):
    """A worker was killed syncing 'a'; its claim expired; then `arsync sync a` succeeded: no
    worker syncs 'a' again at once, and the claim is gone (status no longer says interrupted)."""
    time = Passing(scheduled, T0)
    claim_due(scheduled, "dead", now=T0, company_ids=["a"], limit=1, ttl=TTL)
    started = T0 + timedelta(minutes=5)
    finished = time.to(started + timedelta(minutes=1))
    record_manual_sync(
        scheduled, "a", "cli", started=started, finished=finished, status="ok", interval=timedelta(hours=1)
    )
    assert schedule_rows(scheduled)["a"]["claimed_by"] is None
    later = finished + timedelta(seconds=1)
    assert claim_due(scheduled, "w1", now=later, company_ids=["a"], limit=1, ttl=TTL) == []


def _claim_at(engine, worker: str, at: datetime, ids=("a",)) -> list[str]:
    return [c.company_id for c in claim_due(engine, worker, now=at, company_ids=list(ids), limit=4, ttl=TTL)]


def test_a_company_whose_syncs_keep_dying_with_their_workers_is_held_back_longer_each_time(scheduled):
    """The first abandoned run is taken up at once; the second in a row 5 minutes after its
    claim expired, the third 20, then hourly, requested or due alike; a run that ends clears it."""
    later = T0 + timedelta(days=1)  # always due: only the hold keeps it back
    time = Passing(scheduled, T0)
    [first] = claim_due(scheduled, "w1", now=T0, company_ids=["a"], limit=1, ttl=TTL)
    assert first.abandoned == 0
    expired = T0 + TTL  # w1 killed: its claim expires
    [second] = claim_due(
        scheduled, "w2", now=time.to(expired + timedelta(seconds=1)), company_ids=["a"], limit=1, ttl=TTL
    )
    assert second.abandoned == 1
    expired += timedelta(seconds=1) + TTL  # w2 killed too
    request_sync(scheduled, "a", now=expired, reason="webhook")  # a request does not bring it on
    assert _claim_at(scheduled, "w3", time.to(expired + timedelta(minutes=4, seconds=59))) == []
    [third] = claim_due(
        scheduled,
        "w3",
        now=time.to(expired + timedelta(minutes=5, seconds=1)),
        company_ids=["a"],
        limit=1,
        ttl=TTL,
    )
    assert (third.abandoned, third.requested) == (2, True)
    expired += timedelta(minutes=5, seconds=1) + TTL
    assert _claim_at(scheduled, "w4", time.to(expired + timedelta(minutes=19))) == []
    assert _claim_at(scheduled, "w4", time.to(expired + timedelta(minutes=20, seconds=1))) == ["a"]
    for _ in range(2):  # hourly from then on
        expired += timedelta(minutes=20, seconds=1) if _ == 0 else timedelta(hours=1, seconds=1)
        expired += TTL
        assert _claim_at(scheduled, "w5", time.to(expired + timedelta(minutes=59))) == []
        assert _claim_at(scheduled, "w5", time.to(expired + timedelta(hours=1, seconds=1))) == ["a"]
    assert schedule_rows(scheduled)["a"]["abandoned_runs"] == 5
    # a run that fails still ran: the count is cleared, and the next abandoned run is taken at once
    now = time.to(expired + timedelta(hours=1, seconds=2))
    assert release(scheduled, "w5", "a", next_at=now, finished=now, status="failed")
    assert schedule_rows(scheduled)["a"]["abandoned_runs"] == 0
    assert _claim_at(scheduled, "w6", time.to(later)) == ["a"]
    assert _claim_at(scheduled, "w7", time.to(later + TTL + timedelta(seconds=1))) == ["a"]


def test_a_run_turned_away_keeps_the_count_and_a_manual_sync_clears_it(scheduled):
    """A worker of another host found the killed worker's lease still held (`skipped`): it did
    not run, so the count stays; a successful `arsync sync` ran, and clears it."""
    time = Passing(scheduled, T0)
    claim_due(scheduled, "w1", now=T0, company_ids=["a"], limit=1, ttl=TTL)
    now = time.to(T0 + TTL + timedelta(seconds=1))
    assert _claim_at(scheduled, "w2", now) == ["a"]
    assert release(scheduled, "w2", "a", next_at=now, finished=now, status="skipped")
    assert schedule_rows(scheduled)["a"]["abandoned_runs"] == 1
    [claim] = claim_due(scheduled, "w3", now=now, company_ids=["a"], limit=1, ttl=TTL)
    assert claim.abandoned == 1  # not abandoned this time: the count is carried, not raised
    expired = now + TTL
    assert _claim_at(scheduled, "w4", time.to(expired + timedelta(minutes=4))) == []  # held: the 2nd in a row
    record_manual_sync(
        scheduled,
        "a",
        "cli",
        started=expired,
        finished=expired + timedelta(minutes=1),
        status="ok",
        interval=timedelta(hours=1),
    )
    assert schedule_rows(scheduled)["a"]["abandoned_runs"] == 0


def test_other_companies_are_not_held_by_a_poisoned_one(scheduled):
    time = Passing(scheduled, T0)
    claim_due(scheduled, "w1", now=T0, company_ids=IDS, limit=4, ttl=TTL)
    now = time.to(T0 + TTL + timedelta(seconds=1))
    assert sorted(_claim_at(scheduled, "w2", now, IDS)) == IDS
    for cid in ("b", "c"):
        release(scheduled, "w2", cid, next_at=now, finished=now, status="ok")
    later = time.to(now + TTL + timedelta(seconds=1))  # 'a' abandoned twice in a row: held; the others due
    assert sorted(_claim_at(scheduled, "w3", later, IDS)) == ["b", "c"]


def test_a_claim_never_starts_before_the_request_it_serves(scheduled):
    # The worker read its clock, then the request came in (from another process, whose clock
    # may run ahead), then the worker claimed: the start is the request's time, not before.
    request_sync(scheduled, "a", now=T0 + timedelta(seconds=5))
    claim_due(scheduled, "w1", now=T0 + timedelta(seconds=3), company_ids=IDS, limit=4, ttl=TTL)
    rows = schedule_rows(scheduled)
    started = {cid: rows[cid]["last_started_at"] for cid in IDS}
    at = T0 + timedelta(seconds=3)
    assert started == {"a": T0 + timedelta(seconds=5), "b": at, "c": at}


def test_release_sets_the_next_due_time_and_frees_the_row(scheduled):
    claim_due(scheduled, "w1", now=T0 + timedelta(seconds=3), company_ids=["a"], limit=1, ttl=TTL)
    next_at = T0 + timedelta(minutes=15)
    assert release(scheduled, "w1", "a", next_at=next_at, finished=T0 + timedelta(seconds=40), status="ok")
    row = schedule_rows(scheduled)["a"]
    assert (row["claimed_by"], row["next_due_at"], row["last_status"]) == (None, next_at, "ok")
    assert (
        claim_due(scheduled, "w1", now=T0 + timedelta(minutes=14), company_ids=["a"], limit=1, ttl=TTL) == []
    )


@pytest.mark.parametrize(
    ("due", "started", "finished", "expected"),
    [
        (T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=9), T0 + timedelta(minutes=15)),
        (T0 + timedelta(minutes=5), T0, T0 + timedelta(seconds=9), T0 + timedelta(minutes=15)),
        (T0 - timedelta(hours=3), T0, T0 + timedelta(seconds=9), T0 + timedelta(minutes=15)),
        (T0, T0, T0 + timedelta(minutes=20), T0 + timedelta(minutes=20)),
        (T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=11), T0 + timedelta(minutes=25)),
    ],
    ids=["keeps-the-cadence", "requested-early-counts-from-start", "far-behind-restarts", "overran", "late"],
)
def test_next_due(due, started, finished, expected):
    assert next_due(due, started, finished, timedelta(minutes=15)) == expected


def test_metrics_show_the_syncs_in_a_row_whose_worker_died(scheduled):
    """`/metrics`' `arsync_syncs_abandoned_in_a_row`: the stored count, and the run whose claim
    has expired now, not yet taken up again."""

    time = Passing(scheduled, T0)

    def shown(at: datetime) -> dict[str, float]:
        time.to(at)
        text = generate_latest(registry_for(scheduled, lambda: IDS)).decode()
        [family] = [
            f for f in text_string_to_metric_families(text) if f.name == "arsync_syncs_abandoned_in_a_row"
        ]
        return {s.labels["company"]: s.value for s in family.samples}

    claim_due(scheduled, "w1", now=T0, company_ids=["a"], limit=1, ttl=TTL)
    assert shown(T0 + timedelta(minutes=1)) == {"a": 0, "b": 0, "c": 0}
    expired = T0 + TTL + timedelta(seconds=1)
    assert shown(expired) == {"a": 1, "b": 0, "c": 0}
    claim_due(scheduled, "w2", now=expired, company_ids=["a"], limit=1, ttl=TTL)
    assert shown(expired + TTL + timedelta(seconds=1)) == {"a": 2, "b": 0, "c": 0}


def test_a_slot_kept_for_requests_is_taken_by_requests_only(scheduled):
    """`scheduled` caps the claims nobody requested; the rest of `limit` goes to requests,
    even past companies overdue for longer (they have the other slots)."""
    now = T0 + timedelta(minutes=5)  # a, b and c all overdue
    [only] = claim_due(scheduled, "w1", now=now, company_ids=IDS, limit=2, ttl=TTL, scheduled=1)
    assert (only.company_id, only.requested) == ("a", False)
    assert claim_due(scheduled, "w1", now=now, company_ids=IDS, limit=1, ttl=TTL, scheduled=0) == []
    request_sync(scheduled, "c", now=now + timedelta(seconds=1), reason="webhook")
    later = now + timedelta(seconds=2)
    [kept] = claim_due(scheduled, "w1", now=later, company_ids=IDS, limit=1, ttl=TTL, scheduled=0)
    assert (kept.company_id, kept.requested) == ("c", True)  # b, overdue since T0, waits
    # both kinds at once: the scheduled share first (oldest wanted), then requests only
    request_sync(scheduled, "a", now=later)  # asked again while it runs: after this run
    release(scheduled, "w1", "a", next_at=later, finished=later, status="ok")
    request_sync(scheduled, "a", now=later + timedelta(seconds=1))
    both = claim_due(scheduled, "w1", now=later + timedelta(seconds=2), company_ids=IDS, limit=2, ttl=TTL,
                     scheduled=1)  # fmt: skip
    assert [(c.company_id, c.requested) for c in both] == [("b", False), ("a", True)]


@pytest.mark.parametrize("skew", [timedelta(minutes=5), timedelta(minutes=-5)], ids=["ahead", "behind"])
def test_a_worker_whose_clock_is_off_never_takes_a_live_claim_but_takes_a_dead_one(scheduled, skew):
    """Two workers whose clocks are 5 minutes apart: the other one's never judges the live
    worker's claim expired (which lost its next due time, and counted a run abandoned that
    was not), and still takes a dead worker's claim once it has expired on the store's clock."""
    on_time = datetime.now(UTC)
    other = on_time + skew
    assert _claim_at(scheduled, "live", on_time) == ["a"]
    assert _claim_at(scheduled, "other", other) == []
    assert release(
        scheduled, "live", "a", next_at=on_time + timedelta(hours=1), finished=on_time, status="ok"
    )
    row = schedule_rows(scheduled)["a"]
    assert (row["next_due_at"], row["abandoned_runs"]) == (on_time + timedelta(hours=1), 0)

    assert _claim_at(scheduled, "dead", on_time, ["b"]) == ["b"]
    age_claims(scheduled, TTL - timedelta(seconds=30))  # not renewed for 90 s: still held
    assert _claim_at(scheduled, "other", other, ["b"]) == []
    age_claims(scheduled, timedelta(seconds=31))  # expired a second ago on the store's clock
    [taken] = claim_due(scheduled, "other", now=other, company_ids=["b"], limit=1, ttl=TTL)
    assert (taken.company_id, taken.abandoned) == ("b", 1)
