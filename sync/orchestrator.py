"""One sync run of one company: control flow only (lease, page loop, stop, error mapping).

Pages come normalized from the connector; the store writes each one together with its
cursor and the run's counters (`store.runs`), so a run killed at any point resumes from
the last committed page and never loses or duplicates a row. Only one run per company at
a time (a lease in the store), across processes and workers sharing a database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from connectors.base import (
    ChecksCursor,
    Connector,
    ConnectorError,
    DailyLimitReached,
    ReconnectNeeded,
    Stopped,
)
from connectors.gc_pace import fewer_collections
from portal_rules.records import Page
from portal_rules.types import CompanyPolicy
from store import runs
from store.connections import why_blocked
from store.leases import LeaseBusy, holder, release, sync_lease, try_acquire
from store.pages import Written
from store.runs import FailReason, Run, RunStatus, Tally
from sync.logging import REDACTOR

log = structlog.get_logger("arsync.sync")

LEASE_TTL = timedelta(minutes=5)  # renewed with every page
_SETTINGS_CHANGED = "portal visibility and eligibility decided again for the company's new settings"
Clock = Callable[[], datetime]


@dataclass(kw_only=True)
class SyncSummary(Tally):
    """What one sync did: the run's counters (`Tally`), and how it ended."""

    company: str
    status: RunStatus = RunStatus.RUNNING
    full: bool = False
    seconds: float = 0.0
    error: str | None = None
    run_id: int | None = field(default=None, repr=False)
    customers_touched: set[str] = field(default_factory=set, repr=False)  # by the records written
    rederived: bool = field(default=False, repr=False)  # the company's settings changed (`Run.rederived`)

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
        counters = asdict(self)
        for name in (
            "company",
            "status",
            "full",
            "seconds",
            "error",
            "run_id",
            "customers_touched",
            "rederived",
        ):
            counters.pop(name)
        head = {"company": self.company, "status": str(self.status), "full": self.full}
        return head | counters | {"seconds": round(self.seconds, 3), "error": self.error}

    @property
    def every_customer(self) -> bool:
        """Whether what follows the sync concerns every customer of the company (a full pull, or
        changed settings), not only `customers_touched`, which is then not collected."""
        return self.full or self.rederived

    def touch(self, page: Page, written: Written) -> None:
        """Note the customers a written page's records belong to (a customer record: itself),
        and the ones they belonged to before (a record deleted or moved to another customer)."""
        if not self.every_customer:
            records = page.records
            self.customers_touched.update(getattr(record, "customer_ref", record.ref) for record in records)
            self.customers_touched.update(written.owners_before)
            self.customers_touched.discard("")  # a deletion that names no customer

    def absorb(self, run: Run) -> None:
        """Take over the counters of the run's committed pages."""
        for name, value in vars(run.tally).items():
            setattr(self, name, value)


def sync_company(
    engine: Engine,
    company_id: str,
    policy: CompanyPolicy,
    connector: Connector,
    *,
    full: bool = False,
    owner: str,
    clock: Clock = lambda: datetime.now(UTC),
    on_page: Callable[[SyncSummary, Page], None] | None = None,
    stop: Callable[[], bool] | None = None,
    books: str | None = None,
) -> SyncSummary:
    """Run one sync of `company_id`; never raises for a connector failure (it is in the summary).

    `books` names whose books the connection reads (`sync.settings.books_of`): a company whose
    stored rows came from other books fails at once, its rows untouched (`runs.BooksChanged`).

    `stop` is polled between pages: when it turns true the run ends after the page in
    hand is committed, as `interrupted`, and the next run resumes from its cursor.
    """
    summary = SyncSummary(company=company_id, full=full)
    started = time.monotonic()
    blocked = why_blocked(engine, company_id, clock())
    if blocked is not None:  # no run row: nothing was tried
        summary.status = RunStatus.BLOCKED
        summary.error = blocked
        return summary
    lease = sync_lease(company_id)
    if not try_acquire(engine, lease, owner, LEASE_TTL):
        summary.status = RunStatus.SKIPPED
        summary.error = f"another sync of this company is running ({holder(engine, lease)})"
        return summary
    try:
        checks = connector.cursor_problem if isinstance(connector, ChecksCursor) else None
        try:
            run = runs.begin(
                engine,
                company_id,
                policy,
                full=full,
                worker=owner,
                now=clock(),
                cursor_problem=checks,
                books=books,
            )
        except runs.BooksChanged as exc:
            summary.status, summary.error = RunStatus.FAILED, str(exc)
            log.error("sync.other_books", company=company_id, error=str(exc))
            return summary
        summary.run_id, summary.full, summary.rederived = run.id, run.full, run.rederived
        log.info("sync.started", company=company_id, run=run.id, full=run.full)
        if run.rederived:
            log.info("sync.settings_changed", company=company_id, run=run.id, note=_SETTINGS_CHANGED)
        if run.for_deletions:
            log.info(
                "sync.full_for_deletions", company=company_id, run=run.id, since=run.deletions_unseen_since
            )
        with fewer_collections():
            _pull(engine, run, policy, connector, summary, owner, clock, on_page, stop, requested_full=full)
    finally:
        release(engine, lease, owner)
        summary.seconds = time.monotonic() - started
    return summary


def _pull(engine, run, policy, connector, summary, owner, clock, on_page, stop, *, requested_full) -> None:
    lease = sync_lease(run.company_id)
    pages = connector.pages(run.cursor, full=requested_full)
    try:
        for page in pages:
            absent, asked = _confirmed_absent(engine, run, page, connector)
            if asked:  # the last page's commit counts the requests that confirmed its deletions
                page = replace(page, api_calls=page.api_calls + asked)
            written = runs.commit_page(
                engine, run, page, policy, clock(), absent=absent, lease=(lease, owner, LEASE_TTL)
            )
            summary.absorb(run)
            summary.touch(page, written)
            _log_page(run.company_id, page, written)
            if on_page:
                on_page(summary, page)
            if stop is not None and stop():
                _spent(run, summary, connector)
                _finish(
                    engine,
                    run,
                    summary,
                    RunStatus.INTERRUPTED,
                    "stopped by a signal; the next run resumes",
                    clock,
                )
                return
        _finish(engine, run, summary, RunStatus.OK, None, clock)
    except Stopped as exc:  # a stop requested while the connector waited to retry
        _spent(run, summary, connector)
        _finish(engine, run, summary, RunStatus.INTERRUPTED, str(exc), clock)
    except ReconnectNeeded as exc:
        _fail(engine, run, connector, summary, FailReason.RECONNECT_NEEDED, exc, clock, recorded=exc.recorded)
    except DailyLimitReached as exc:
        _fail(engine, run, connector, summary, FailReason.DAILY_LIMIT, exc, clock, retry_at=exc.retry_at)
    except ConnectorError as exc:
        _fail(engine, run, connector, summary, FailReason.CONNECTOR, exc, clock)
    except LeaseBusy as exc:
        _fail(engine, run, connector, summary, FailReason.LEASE_LOST, exc, clock)
    except DBAPIError as exc:  # the store went away (restart, network): operational, not a bug
        cause = str(exc.orig or exc)
        log.error("sync.store_unavailable", company=run.company_id, error=cause.splitlines()[0])
        unavailable = f"store unavailable: {cause}"
        _fail(engine, run, connector, summary, FailReason.STORE_UNAVAILABLE, unavailable, clock)
    except Exception as exc:  # a bug or an unexpected payload: record it, never lose the run row
        log.exception("sync.crashed", company=run.company_id)
        _fail(engine, run, connector, summary, FailReason.CRASHED, exc, clock)
    finally:
        # A pull that ended early stops fetching ahead now (its queued requests are dropped,
        # its decoder process ends), not whenever the generator is collected.
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def _confirmed_absent(engine: Engine, run: Run, page: Page, connector: Connector) -> tuple[dict | None, int]:
    """At the end of a full pull: the unseen stored records the source confirms it no longer
    has, and the requests that took (when the connector counts them in `presence_calls`).

    A record can be missed by a full pull without being gone (another record deleted
    mid-pull shifts the paging), so candidates are asked for by id before they are marked
    deleted. A connector that cannot ask by id (no `confirm_present`) leaves it to the
    store, which marks every unseen record (None).
    """
    confirm = getattr(connector, "confirm_present", None)
    if not (page.full_sync_complete and run.pulling_everything) or confirm is None:
        return None, 0
    before = getattr(connector, "presence_calls", 0)
    absent = {}
    for entity, refs in runs.absent_candidates(engine, run, page).items():
        present = confirm(entity, refs) if refs else set()
        absent[entity] = [ref for ref in refs if ref not in present]
        if present:
            log.info("sync.unseen_but_present", company=run.company_id, entity=entity, records=len(present))
    return absent, getattr(connector, "presence_calls", 0) - before


def _log_page(company_id: str, page: Page, written: Written) -> None:
    for record in written.quarantined:
        log.warning(
            "sync.record_quarantined",
            company=company_id,
            entity=record.entity,
            ref=record.ref,
            reason=record.reason,
        )
    if written.gone is not None:
        log.info(
            "sync.full_reconciled", company=company_id, **{f"{k}_gone": v for k, v in written.gone.items()}
        )
    log.info(
        "sync.page_stored",
        company=company_id,
        entity=page.entity,
        rows=written.rows,
        adjustments=written.adjustments,
        quarantined=len(written.quarantined),
        api_calls=page.api_calls,
    )


def _finish(
    engine: Engine, run: Run, summary: SyncSummary, status: RunStatus, error: str | None, clock
) -> None:
    runs.finish(engine, run, status, error, clock())
    summary.status, summary.error = status, error
    _log_end(summary)


def _fail(
    engine: Engine,
    run: Run,
    connector: Connector,
    summary: SyncSummary,
    reason: FailReason,
    cause: Exception | str,
    clock: Clock,
    *,
    retry_at: datetime | None = None,
    recorded: bool = False,
) -> None:
    message = cause if isinstance(cause, str) else (str(cause) or type(cause).__name__)
    # Stored, then printed by `sync`, `status` and `history`: the secrets the log lines hide
    # (tokens, client secrets, credentials an API's error may echo) are hidden here too.
    message = REDACTOR.scrub(message)
    _spent(run, summary, connector)
    summary.error = runs.fail(engine, run, reason, message, clock(), retry_at=retry_at, recorded=recorded)
    summary.status = RunStatus.FAILED
    _log_end(summary)


def _spent(run: Run, summary: SyncSummary, connector: Connector) -> None:
    """A run ending early counts the requests its connector made, committed pages or not:
    pages asked ahead, attempts of the page that failed, token refreshes (a connector that
    keeps no such count, `requests_made`, leaves the committed pages' count)."""
    made = getattr(connector, "requests_made", None)
    if isinstance(made, int) and made > run.tally.api_calls:
        run.tally.api_calls = summary.api_calls = made


def _log_end(summary: SyncSummary) -> None:
    log.info(
        "sync.finished",
        company=summary.company,
        status=str(summary.status),
        customers=summary.customers,
        invoices=summary.invoices,
        adjustments=summary.adjustments,
        api_calls=summary.api_calls,
        error=summary.error,
    )
