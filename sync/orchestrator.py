"""One sync run of one company: connector pages -> rules -> set-based upserts, page by page.

Each page is written in one transaction together with its cursor and the run's counters,
so a run killed at any point resumes from the last committed page and never loses or
duplicates a row. Only one run per company at a time (a lease in the store), across
processes and workers sharing a database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError

from connectors.base import Connector, ConnectorError, DailyLimitReached, ReconnectNeeded
from connectors.records import Page, Quarantined
from portal_rules.types import CompanyPolicy
from store.accounts import recompute_accounts
from store.history.writes import mark_missing_deleted as mark_missing_history_deleted
from store.history.writes import out_of_range, write_credits, write_payments
from store.leases import LeaseBusy, holder, release, try_acquire
from store.tables import Connection as ConnectionRow
from store.tables import QuarantinedRecord, SyncCursor, SyncRun
from store.types import fits_money
from store.upserts import CustomerIn, InvoiceIn, mark_missing_deleted, write_customers, write_invoices

log = structlog.get_logger("arsync.sync")


class StoreUnavailable(Exception):
    """The database connection failed under a page; the next run resumes from the last commit."""


LEASE_TTL = timedelta(minutes=5)  # renewed after every page
Clock = Callable[[], datetime]


@dataclass
class SyncSummary:
    company: str
    status: str = "running"  # ok | failed | skipped | blocked
    full: bool = False
    customers: int = 0
    invoices: int = 0
    payments: int = 0
    credits: int = 0
    adjustments: int = 0
    quarantined: int = 0
    api_calls: int = 0
    pages: int = 0
    seconds: float = 0.0
    error: str | None = None
    run_id: int | None = field(default=None, repr=False)

    def describe(self) -> str:
        """One human line: what the run did."""
        text = (
            f"{self.company}: {self.status}: {self.customers} customers, {self.invoices} invoices, "
            + (f"{self.payments} payments, {self.credits} credits, " if self.payments or self.credits else "")
            + f"{self.adjustments} adjustments, {self.quarantined} quarantined, "
            f"{self.api_calls} API calls, {self.seconds:.1f}s"
        )
        return text + (f" ({self.error})" if self.error else "")

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("run_id")
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass
class _State:
    connector: dict | None  # the connector's own cursor
    full_since_run: int | None  # set while a full pull is in progress (resumable)


def sync_company(
    engine: Engine,
    company_id: str,
    policy: CompanyPolicy,
    connector: Connector,
    *,
    full: bool = False,
    owner: str,
    clock: Clock = lambda: datetime.now(UTC),
    on_page: Callable[[SyncSummary], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SyncSummary:
    """Run one sync of `company_id`; never raises for a connector failure (it is in the summary).

    `stop` is polled between pages: when it turns true the run ends after the page in
    hand is committed, as `interrupted`, and the next run resumes from its cursor.
    """
    summary = SyncSummary(company=company_id, full=full)
    started = time.monotonic()
    blocked = _blocked_until(engine, company_id)
    if blocked and blocked > clock():
        summary.status, summary.error = (
            "blocked",
            f"daily API limit reached; resumes at {blocked.isoformat()}",
        )
        return summary
    if not try_acquire(engine, f"sync:{company_id}", owner, LEASE_TTL, clock()):
        summary.status = "skipped"
        summary.error = f"another sync of this company is running ({holder(engine, f'sync:{company_id}')})"
        return summary
    try:
        _run(engine, company_id, policy, connector, summary, owner, clock, on_page, stop)
    finally:
        release(engine, f"sync:{company_id}", owner)
        summary.seconds = time.monotonic() - started
    return summary


def _run(engine, company_id, policy, connector, summary, owner, clock, on_page, stop) -> None:
    with engine.begin() as connection:
        _close_stale_runs(connection, company_id, clock())
        state = _load_state(connection, company_id)
        if summary.full or state.connector is None:
            state = _State(connector=None, full_since_run=None)
        # A first sync (no cursor yet) pulls everything, like --full; so does a run resuming
        # an interrupted full pull: history shows them as full pulls.
        requested_full = summary.full
        summary.full = summary.full or state.connector is None or state.full_since_run is not None
        row = {"company_id": company_id, "started_at": clock(), "status": "running", "full": summary.full}
        row["worker"] = owner  # SPEC §11: the worker that ran it
        summary.run_id = connection.execute(insert(SyncRun).values(**row)).inserted_primary_key[0]
        if state.full_since_run is None and summary.full:
            state.full_since_run = summary.run_id
    log.info("sync.started", company=company_id, run=summary.run_id, full=summary.full)
    try:
        for page in connector.pages(state.connector, full=requested_full):
            _store_page(engine, company_id, policy, page, state, summary, clock)
            if not try_acquire(engine, f"sync:{company_id}", owner, LEASE_TTL, clock()):
                raise LeaseBusy("lost the sync lease")
            if on_page:
                on_page(summary)
            if stop is not None and stop():
                _finish(engine, summary, "interrupted", "stopped by a signal; the next run resumes", clock)
                return
        _finish(engine, summary, "ok", None, clock)
    except (ReconnectNeeded, DailyLimitReached, ConnectorError, LeaseBusy) as exc:
        _fail(engine, company_id, summary, exc, clock)
    except DBAPIError as exc:  # the store went away (restart, network): operational, not a bug
        log.error("sync.store_unavailable", company=company_id, error=str(exc.orig or exc).splitlines()[0])
        _fail(engine, company_id, summary, StoreUnavailable(f"store unavailable: {exc.orig or exc}"), clock)
    except Exception as exc:  # a bug or an unexpected payload: record it, never lose the run row
        log.exception("sync.crashed", company=company_id)
        _fail(engine, company_id, summary, exc, clock)


def _screen(page: Page) -> Page:
    """Move records whose amounts the store cannot hold to the page's quarantine."""
    page = _screen_history(page)
    unfit = [i for i in page.invoices if not (fits_money(i.total) and fits_money(i.balance))]
    if not unfit:
        return page
    reasons = tuple(
        Quarantined("invoices", i.ref, f"amount out of range (total {i.total}, balance {i.balance})")
        for i in unfit
    )
    kept = tuple(i for i in page.invoices if i not in unfit)
    return replace(page, invoices=kept, quarantined=page.quarantined + reasons)


def _screen_history(page: Page) -> Page:
    reasons = [(r, out_of_range(r)) for r in (*page.payments, *page.credits)]
    unfit = tuple(Quarantined(page.entity, r.ref, why) for r, why in reasons if why)
    if not unfit:
        return page
    keep = {id(r) for r, why in reasons if not why}
    return replace(
        page,
        payments=tuple(p for p in page.payments if id(p) in keep),
        credits=tuple(c for c in page.credits if id(c) in keep),
        quarantined=page.quarantined + unfit,
    )


def _store_page(engine, company_id, policy, page: Page, state: _State, summary: SyncSummary, clock) -> None:
    page = _screen(page)
    now = clock()
    with engine.begin() as connection:
        # During a full pull, portal accounts are assessed once for the whole company on its
        # last page instead of per page (new contacts stay ineligible until then).
        full_pull = state.full_since_run is not None
        written, adjustments = _write_records(
            connection, company_id, policy, page, now, summary.run_id, assess=not full_pull
        )
        _quarantine(connection, company_id, summary.run_id, page, now)
        if page.full_sync_complete and state.full_since_run is not None:
            gone = mark_missing_deleted(connection, company_id, state.full_since_run)
            gone += mark_missing_history_deleted(connection, company_id, state.full_since_run)
            recompute_accounts(connection, company_id, policy)
            names = ("customers_gone", "invoices_gone", "payments_gone", "credits_gone")
            log.info("sync.full_reconciled", company=company_id, **dict(zip(names, gone, strict=True)))
            state.full_since_run = None
        state.connector = page.cursor
        _save_state(connection, company_id, state, now)
        summary.pages += 1
        summary.api_calls += page.api_calls
        summary.quarantined += len(page.quarantined)
        summary.adjustments += adjustments
        setattr(summary, page.entity, getattr(summary, page.entity) + written)
        connection.execute(
            update(SyncRun)
            .where(SyncRun.id == summary.run_id)
            .values(
                customers=summary.customers,
                invoices=summary.invoices,
                adjustments=summary.adjustments,
                quarantined=summary.quarantined,
                api_calls=summary.api_calls,
            )
        )
    log.info(
        "sync.page_stored",
        company=company_id,
        entity=page.entity,
        rows=written,
        adjustments=adjustments,
        quarantined=len(page.quarantined),
        api_calls=page.api_calls,
    )


def _write_records(
    connection, company_id, policy, page: Page, now, run_id, *, assess: bool
) -> tuple[int, int]:
    if page.customers:
        customers = [
            CustomerIn(c.ref, c.display_name, c.active, c.emails, c.deleted, c.updated_at)
            for c in page.customers
        ]
        written, emails = write_customers(
            connection,
            company_id,
            customers,
            import_inactive=policy.import_inactive_customers,
            now=now,
            run_id=run_id,
        )
        if assess:
            recompute_accounts(connection, company_id, policy, emails)
        return written, 0
    if page.invoices:
        invoices = [
            InvoiceIn(
                i.ref,
                i.customer_ref,
                i.doc_number,
                i.issue_date,
                i.due_date,
                i.currency,
                i.total,
                i.balance,
                i.sent,
                i.voided,
                i.deleted,
                i.draft,
                i.updated_at,
            )
            for i in page.invoices
        ]
        return write_invoices(connection, company_id, invoices, now=now, run_id=run_id)
    if page.payments:
        return write_payments(connection, company_id, page.payments, now=now, run_id=run_id), 0
    if page.credits:
        return write_credits(connection, company_id, page.credits, now=now, run_id=run_id), 0
    return 0, 0


def _quarantine(connection: Connection, company_id: str, run_id: int, page: Page, now: datetime) -> None:
    for record in page.quarantined:
        log.warning(
            "sync.record_quarantined",
            company=company_id,
            entity=record.entity,
            ref=record.ref,
            reason=record.reason,
        )
    if page.quarantined:
        connection.execute(
            insert(QuarantinedRecord),
            [
                {
                    "company_id": company_id,
                    "run_id": run_id,
                    "entity": r.entity,
                    "ref": r.ref,
                    "reason": r.reason,
                    "seen_at": now,
                }
                for r in page.quarantined
            ],
        )


def _load_state(connection: Connection, company_id: str) -> _State:
    raw = connection.scalar(select(SyncCursor.cursor).where(SyncCursor.company_id == company_id))
    if raw is None:
        return _State(connector=None, full_since_run=None)
    data = json.loads(raw)
    return _State(connector=data.get("connector"), full_since_run=data.get("full_since_run"))


def _save_state(connection: Connection, company_id: str, state: _State, now: datetime) -> None:
    payload = json.dumps({"connector": state.connector, "full_since_run": state.full_since_run})
    updated = connection.execute(
        update(SyncCursor).where(SyncCursor.company_id == company_id).values(cursor=payload, updated_at=now)
    ).rowcount
    if not updated:
        connection.execute(insert(SyncCursor).values(company_id=company_id, cursor=payload, updated_at=now))


def _close_stale_runs(connection: Connection, company_id: str, now: datetime) -> None:
    """Runs left `running` by a killed worker (we hold the lease, so they are not alive)."""
    connection.execute(
        update(SyncRun)
        .where(SyncRun.company_id == company_id, SyncRun.status == "running")
        .values(status="interrupted", finished_at=now, error="the worker stopped before finishing")
    )


def _blocked_until(engine: Engine, company_id: str) -> datetime | None:
    with engine.connect() as connection:
        return connection.scalar(
            select(ConnectionRow.blocked_until).where(ConnectionRow.company_id == company_id)
        )


def _finish(engine: Engine, summary: SyncSummary, status: str, error: str | None, clock: Clock) -> None:
    summary.status, summary.error = status, error
    with engine.begin() as connection:
        if status == "ok":
            connection.execute(
                update(ConnectionRow)
                .where(ConnectionRow.company_id == summary.company, ConnectionRow.status == "rate_limited")
                .values(status="ok", status_detail=None, blocked_until=None)
            )
        connection.execute(
            update(SyncRun)
            .where(SyncRun.id == summary.run_id)
            .values(status=status, error=error, finished_at=clock())
        )
    log.info(
        "sync.finished",
        company=summary.company,
        status=status,
        customers=summary.customers,
        invoices=summary.invoices,
        adjustments=summary.adjustments,
        api_calls=summary.api_calls,
        error=error,
    )


def _fail(engine: Engine, company_id: str, summary: SyncSummary, exc: Exception, clock: Clock) -> None:
    message = str(exc) or type(exc).__name__
    with engine.begin() as connection:
        values: dict = {}
        if isinstance(exc, ReconnectNeeded):
            values = {"status": "reconnect_needed", "status_detail": message}
        elif isinstance(exc, DailyLimitReached):
            values = {"status": "rate_limited", "status_detail": message, "blocked_until": exc.retry_at}
            message = f"{message}; resumes at {exc.retry_at.isoformat()}"
        if values:
            connection.execute(
                update(ConnectionRow).where(ConnectionRow.company_id == company_id).values(**values)
            )
    _finish(engine, summary, "failed", message, clock)
