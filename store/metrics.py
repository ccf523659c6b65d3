"""Per-company counts for `/metrics`, read from the store at scrape time (one query per family).

Whatever process did the work (any worker, any CLI run), the store holds it, so the figures
are the fleet's, not one process's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, Engine, case, distinct, func, select, union_all

from store.clock import store_now
from store.fleet_tables import SyncSchedule
from store.schedule import abandoned_in_a_row
from store.tables import PENDING, AccessRequest, Outbox, QuarantinedRecord, SyncRun, SyncRunTotal

RUNS = SyncRun.__table__
TOTALS = SyncRunTotal.__table__  # the runs pruned past the retention (`store.retention`)
QUARANTINE = QuarantinedRecord.__table__
OUTBOX = Outbox.__table__
REQUESTS = AccessRequest.__table__
SCHEDULE = SyncSchedule.__table__


@dataclass
class StoreCounts:
    syncs: dict[tuple[str, str], int] = field(default_factory=dict)  # (company, status) -> runs
    api_calls: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    outstanding: dict[str, int] = field(default_factory=dict)  # quarantined records not read since
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)  # (company, state) -> messages
    requested_invites: dict[str, int] = field(default_factory=dict)  # decided, not yet issued
    abandoned: dict[str, int] = field(default_factory=dict)  # syncs in a row whose worker died


def store_counts(engine: Engine) -> StoreCounts:
    """Sync runs by status and their API calls (the runs kept and the totals of those pruned
    past the retention, so the figures never go down), quarantined records, outbox messages
    by state, the invitations portal requests decided on that no worker has issued yet, and
    the syncs in a row each company's workers began and never finished (the last one's claim
    expired, on the store's clock). `outstanding`: records whose latest version no sync could read
    (`store.quarantine`), each counted once however many runs quarantined it."""
    counts = StoreCounts()
    with engine.connect() as connection:
        runs = select(
            RUNS.c.company_id, RUNS.c.status, func.count(), func.coalesce(func.sum(RUNS.c.api_calls), 0)
        ).group_by(RUNS.c.company_id, RUNS.c.status)
        pruned = select(TOTALS.c.company_id, TOTALS.c.status, TOTALS.c.runs, TOTALS.c.api_calls)
        # one statement, one snapshot: a prune committed between two reads would count its
        # runs twice or not at all, and a counter that dips reads as a reset to Prometheus
        for company, status, n, calls in connection.execute(union_all(runs, pruned)):
            counts.syncs[(company, status)] = counts.syncs.get((company, status), 0) + n
            counts.api_calls[company] = counts.api_calls.get(company, 0) + int(Decimal(calls))
        quarantined = select(QUARANTINE.c.company_id, func.count()).group_by(QUARANTINE.c.company_id)
        counts.quarantined = {company: n for company, n in connection.execute(quarantined)}
        counts.outstanding = _outstanding(connection)
        outbox = select(OUTBOX.c.company_id, OUTBOX.c.status, func.count()).group_by(
            OUTBOX.c.company_id, OUTBOX.c.status
        )
        counts.outbox = {(company, state): n for company, state, n in connection.execute(outbox)}
        requested = select(REQUESTS.c.company_id, func.count()).where(PENDING).group_by(REQUESTS.c.company_id)
        counts.requested_invites = {company: n for company, n in connection.execute(requested)}
        abandoned = select(SCHEDULE.c.company_id, abandoned_in_a_row(store_now(connection)))
        counts.abandoned = {company: n for company, n in connection.execute(abandoned)}
    return counts


def _outstanding(connection: Connection) -> dict[str, int]:
    """Per company, its outstanding records: each ref once per entity, each row without a ref
    (nothing tells those apart), as `arsync status` counts them (`store.glance`)."""
    q = QUARANTINE.c
    records = func.count(distinct(q.ref)) + func.sum(case((q.ref.is_(None), 1), else_=0))
    query = select(q.company_id, records).where(q.resolved_at.is_(None)).group_by(q.company_id, q.entity)
    found: dict[str, int] = {}
    for company, n in connection.execute(query):
        found[company] = found.get(company, 0) + n
    return found
