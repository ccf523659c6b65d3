"""Build a company's connector from the configuration and run one sync of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine

from connectors.base import ConnectorError
from connectors.ratelimit import PacingFactory
from connectors.registry import UnknownConnector, create_connector
from connectors.waits import interruptible
from portal_rules.records import Page
from store import health, runs
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.pacing import StorePacer
from store.runs import RunStatus
from store.statistics import refresh_statistics
from sync.config import CompanyConfig
from sync.logging import REDACTOR
from sync.orchestrator import SyncSummary, sync_company
from sync.settings import books_of, company_policy, connector_settings

Clock = Callable[[], datetime]
log = structlog.get_logger("arsync.sync")


def pacing_for(
    engine: Engine, company_id: str, stop: Callable[[], bool] | None = None
) -> PacingFactory | None:
    """The company's API budget shared by every process on PostgreSQL (SPEC §11).

    On SQLite (one worker) each client paces itself with a per-process limiter. A wait for
    the budget ends with `Stopped` once `stop()` is true.
    """
    if engine.dialect.name != "postgresql":
        return None
    sleep = interruptible(time.sleep, stop)

    def pacer(per_window: int, window: float, concurrent: int) -> StorePacer:
        return StorePacer(engine, company_id, per_window, window, concurrent, sleep=sleep)

    return pacer


def sync_one(
    engine: Engine,
    box: SecretBox,
    company: CompanyConfig,
    *,
    owner: str,
    full: bool = False,
    clock: Clock = lambda: datetime.now(UTC),
    options: dict | None = None,
    on_page: Callable[[SyncSummary, Page], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SyncSummary:
    """One sync of `company`: a failure of any kind ends up in the returned summary."""
    # The secrets this sync uses are masked wherever they would appear in a log line.
    REDACTOR.remember(company.connection.client_secret())
    credentials = DbCredentials(engine, company.id, box, remember=REDACTOR.remember)
    try:
        settings = connector_settings(
            company, clock=clock, options=options, pacing=pacing_for(engine, company.id, stop), stop=stop
        )
        connector = create_connector(settings, credentials)
    except (UnknownConnector, ConnectorError) as exc:  # e.g. a Xero company without tenant_id:
        # this company's failure, recorded as a failed run for status and history; the
        # others are synced
        runs.refuse(engine, company.id, str(exc), worker=owner, now=clock())
        return SyncSummary(company=company.id, status=RunStatus.FAILED, full=full, error=str(exc))
    summary = sync_company(
        engine,
        company.id,
        company_policy(company),
        connector,
        full=full,
        owner=owner,
        clock=clock,
        on_page=on_page,
        stop=stop,
        books=books_of(company),
    )
    if summary.status == "ok" and summary.full:
        analyze(engine, company.id)
    if summary.status == "ok" or _wrote(summary):
        # A run that failed or was stopped after committing pages moved its cursor past them:
        # no later run re-reads them, so their customers' health is recomputed now.
        touched = None if summary.every_customer else summary.customers_touched
        recompute_health(engine, company.id, clock(), touched)
    return summary


def _wrote(summary: SyncSummary) -> bool:
    """Whether the run committed anything: a page, or its company's settings decided again."""
    return summary.run_id is not None and (summary.rederived or summary.pages > 0)


def sync_now(
    engine: Engine, box: SecretBox, company: CompanyConfig, *, owner: str, clock: Clock, **options
) -> SyncSummary:
    """`sync_one` outside the workers' schedule (`arsync sync`, the demo); the schedule learns of it.

    A successful run makes the company due again an interval later, so a worker does not
    repeat it at once, and `arsync status` never shows a next sync before the last one. The
    schedule is the workers', kept in real time: a run at another `--now` (a replay, a test)
    neither moves the next sync to that day nor dates its claims there.
    """
    from store.schedule import record_manual_sync

    started = datetime.now(UTC)
    summary = sync_one(engine, box, company, owner=owner, clock=clock, **options)
    if summary.status in (RunStatus.OK, RunStatus.FAILED, RunStatus.INTERRUPTED):
        interval = timedelta(minutes=company.sync_interval_minutes)
        record_manual_sync(
            engine,
            company.id,
            owner,
            started=started,
            finished=datetime.now(UTC),
            status=summary.status,
            interval=interval,
        )
    return summary


def analyze(engine: Engine, company_id: str) -> None:
    """The planner's statistics after a full pull (`store.statistics`): a failure here is
    logged, never fatal (queries only run slower without them)."""
    try:
        refresh_statistics(engine)
    except Exception as exc:  # noqa: BLE001  (any failure: the sync's result stands)
        log.warning("store.analyze_failed", company=company_id, error=f"{type(exc).__name__}: {exc}")


def recompute_health(
    engine: Engine, company_id: str, now: datetime, customer_refs: set[str] | None = None
) -> None:
    """Customer health after a sync that wrote (and daily): a failure here is logged, never fatal.

    The sync itself is committed; the next sync or daily run recomputes.
    """
    try:
        count = health.recompute(engine, company_id, now, customer_refs)
    except Exception as exc:  # noqa: BLE001  (any failure: the sync's result stands)
        log.error("health.recompute_failed", company=company_id, error=f"{type(exc).__name__}: {exc}")
    else:
        log.info("health.recomputed", company=company_id, customers=count)
