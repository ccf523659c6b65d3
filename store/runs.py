"""A sync run as the store keeps it: its row in `sync_runs`, its cursor, its pages, its end.

The sync's control flow (`sync.orchestrator`) calls these and nothing else of the store:
`begin` a run, `commit_page` (records, quarantine, cursor and counters in one transaction,
so a run killed at any point resumes from its last page and never loses or duplicates a
row), then `finish` it or `fail` it with a typed reason. The connection's status for a
failure is written here, in `store.connections`, and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import Connection, Engine, insert, select, update

from portal_rules.records import Entity, Page
from portal_rules.types import CompanyPolicy
from store.connections import clear_rate_limit, mark_rate_limited, mark_reconnect_needed
from store.leases import LeaseBusy, renew
from store.pages import PageContext, Written, write_page
from store.quarantine import open_entities, resolve_before
from store.reconcile import TABLES, mark_absent, stored_entities, unseen
from store.rule_settings import settle_rules
from store.tables import SyncCursor, SyncRun
from store.upsert import AlreadyStored

RUNS = SyncRun.__table__
CURSORS = SyncCursor.__table__
# What a full pull inserts unread while it finds none stored (customers' pages are few and
# carry contacts and accounts, which are always compared)
INSERTED_NEW: tuple[Entity, ...] = ("invoices", "payments", "credits")


class RunStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped between pages (signal, lost worker); the next run resumes
    SKIPPED = "skipped"  # another run of the company held the lease: no row is written
    BLOCKED = "blocked"  # the daily API limit is spent, or a reconnect is needed: no row is written


class FailReason(StrEnum):
    RECONNECT_NEEDED = "reconnect_needed"  # the refresh token was refused
    DAILY_LIMIT = "daily_limit"  # the provider's daily call budget is spent
    CONNECTOR = "connector"  # the API failed in a way retries did not cure
    STORE_UNAVAILABLE = "store_unavailable"  # the database went away under a page
    LEASE_LOST = "lease_lost"  # another worker took the company over
    CRASHED = "crashed"  # a bug or an unexpected payload


@dataclass
class Tally:
    """What a run has written so far, as `sync_runs` and `arsync sync` report it."""

    customers: int = 0
    invoices: int = 0
    payments: int = 0
    credits: int = 0
    adjustments: int = 0
    quarantined: int = 0
    api_calls: int = 0
    pages: int = 0

    def add(self, page: Page, written: Written) -> None:
        setattr(self, page.entity, getattr(self, page.entity) + written.rows)
        self.adjustments += written.adjustments
        self.quarantined += len(written.quarantined)
        self.api_calls += page.api_calls
        self.pages += 1

    def columns(self) -> dict[str, int]:
        """The counters `sync_runs` keeps (every one but the page count)."""
        return {name: count for name, count in vars(self).items() if name != "pages"}


@dataclass
class Run:
    """A run in progress. `cursor` is the connector's own, as of the last committed page."""

    id: int
    company_id: str
    full: bool  # pulls everything: asked for, a first sync, or resuming a full pull
    cursor: dict | None
    full_since_run: int | None  # the run that began the full pull in progress (resumable)
    tally: Tally = field(default_factory=Tally)
    # deletions in the books since then are unknown to the store (`Page.deletions_unseen_since`),
    # kept with the cursor until a full pull has confirmed every stored record
    deletions_unseen_since: str | None = None
    # Entities whose pages are inserted without reading what is stored first: in a full pull,
    # until a page finds one of its records stored (a company synced before, a record read
    # twice); that page is then written again the usual way, and the entity's later ones too.
    new: set[Entity] = field(default_factory=set)
    # Entities the company had no live record of when this run began its full pull: the
    # pull cannot have missed one of those, so none is asked for at its end.
    unstored: frozenset[Entity] = frozenset()
    # The company's settings had changed: its customers' and contacts' derived columns were
    # decided again as the run began (`store.rule_settings`)
    rederived: bool = False
    # This run pulls everything because deletions since `deletions_unseen_since` are unknown
    for_deletions: bool = False
    # Whose books the company's rows are synced from ("quickbooks realm 123"), kept with the
    # cursor: rows of other books under the same id are never synced over (`BooksChanged`)
    books: str | None = None
    # Entities with outstanding quarantine rows (`store.quarantine`), read as the run began and
    # grown by its pages: only their pages look for rows to resolve
    quarantine_open: set[Entity] = field(default_factory=set)

    @property
    def pulling_everything(self) -> bool:
        return self.full_since_run is not None

    @property
    def may_miss(self) -> list[Entity]:
        """The entities the full pull in progress may end having missed a stored record of."""
        return [entity for entity in TABLES if entity not in self.unstored]


def begin(
    engine: Engine,
    company_id: str,
    policy: CompanyPolicy,
    *,
    full: bool,
    worker: str,
    now: datetime,
    cursor_problem: Callable[[dict], str | None] | None = None,
    books: str | None = None,
) -> Run:
    """Open a run (the caller holds the company's sync lease).

    Runs a killed worker left `running` are closed as interrupted. A first sync (no cursor
    yet) pulls everything, like `full`; so does a run resuming an interrupted full pull, and
    one whose company now imports the inactive customers it did not (`store.rule_settings`,
    which also decides the company's rows again when its settings changed), one whose
    cursor the connector cannot go on from (`cursor_problem` says why, see
    `connectors.base.ChecksCursor`), and the one after a run that could not see deletions
    (`deletions_unseen_since`: a QuickBooks gap past CDC's 30 days).

    `books` names whose books the company is connected to now; the rows stored were synced
    from the books the cursor names. When the two differ (an id removed and given to another
    tenant, a realm id edited), the run is recorded as failed and `BooksChanged` raised:
    syncing one company's books over another's rows would mix them in one portal.
    """
    with engine.begin() as connection:
        connection.execute(
            update(RUNS)
            .where(RUNS.c.company_id == company_id, RUNS.c.status == RunStatus.RUNNING)
            .values(
                status=RunStatus.INTERRUPTED, finished_at=now, error="the worker stopped before finishing"
            )
        )
        stored = _load_cursor(connection, company_id)  # the lease holder's: read once
        refused = _other_books(company_id, stored.books, books)
        if refused is not None:  # recorded for history and status; nothing is pulled
            _record_refused(connection, company_id, refused, worker, now)
    if refused is not None:
        raise BooksChanged(refused)
    with engine.begin() as connection:
        settled = settle_rules(connection, company_id, policy)
        cursor, full_since_run, unseen_since = stored.connector, stored.full_since_run, stored.unseen_since
        # Deletions made in the books during a gap past the API's change window are unknown
        # until a full pull has confirmed every stored record: the run after the one that
        # found the gap pulls everything by itself (one resumed does, already).
        for_deletions = unseen_since is not None and full_since_run is None and not full
        full = full or settled.pull_all or for_deletions
        # a cursor the connector cannot go on from (an earlier release's) begins a full pull
        if full or cursor is None or (cursor_problem is not None and cursor_problem(cursor)):
            cursor, full_since_run = None, None
        pulls_all = full or cursor is None or full_since_run is not None
        begins_pull = pulls_all and full_since_run is None
        unstored = frozenset(TABLES) - stored_entities(connection, company_id) if begins_pull else frozenset()
        run_id = connection.execute(
            insert(RUNS).values(
                company_id=company_id, started_at=now, status=RunStatus.RUNNING, full=pulls_all, worker=worker
            )
        ).inserted_primary_key[0]
        quarantine_open = open_entities(connection, company_id)
    if begins_pull:
        full_since_run = run_id
    new = set(INSERTED_NEW) if pulls_all else set()
    return Run(
        run_id,
        company_id,
        pulls_all,
        cursor,
        full_since_run,
        new=new,
        unstored=unstored,
        rederived=settled.rederived,
        deletions_unseen_since=unseen_since,
        for_deletions=for_deletions,
        books=books or stored.books,
        quarantine_open=quarantine_open,
    )


def refuse(engine: Engine, company_id: str, error: str, *, worker: str, now: datetime) -> None:
    """Record a sync that could not begin (its connection lacks a field, no connector here
    answers to its kind) as a failed run: `status` and `history` then say the company's syncs
    fail, and why, as for any other failure (a worker tries again every interval)."""
    with engine.begin() as connection:
        _record_refused(connection, company_id, error, worker, now)


def _record_refused(connection: Connection, company_id: str, error: str, worker: str, now: datetime) -> None:
    connection.execute(
        insert(RUNS).values(
            company_id=company_id,
            started_at=now,
            finished_at=now,
            status=RunStatus.FAILED,
            error=error,
            full=False,
            worker=worker,
        )
    )


def absent_candidates(engine: Engine, run: Run, page: Page) -> dict[Entity, list[str]]:
    """Before the last page of a full pull is committed: stored refs the pull has not re-read.

    The page's own records (and the ones it quarantined: the source has them) are not
    candidates. The sync asks the source which candidates still exist. An entity the company
    had none of when the pull began has none (a first sync's end reads no table).
    """
    if run.full_since_run is None:
        return {}
    with engine.connect() as connection:
        candidates = unseen(connection, run.company_id, run.full_since_run, run.may_miss)
    # By entity: QuickBooks numbers customers and transactions apart, so a credit memo on
    # the last page may share its id with a customer deleted since the pull began.
    on_page = {(page.entity, record.ref) for record in page.records}
    on_page |= {(q.entity, q.ref) for q in page.quarantined if q.ref}
    return {entity: [r for r in refs if (entity, r) not in on_page] for entity, refs in candidates.items()}


def commit_page(
    engine: Engine,
    run: Run,
    page: Page,
    policy: CompanyPolicy,
    now: datetime,
    *,
    absent: Mapping[Entity, Collection[str]] | None = None,
    lease: tuple[str, str, timedelta] | None = None,
) -> Written:
    """Store `page` with its cursor and the run's counters, in one transaction.

    With `lease` (name, owner, ttl), the same transaction renews the sync's lease first: a
    sync whose lease was taken over (it stalled past the ttl) raises `LeaseBusy` and
    writes nothing more.

    During a full pull, portal accounts are assessed once for the whole company on its last
    page instead of per page (new contacts stay ineligible until then). On that last page,
    `absent` (confirmed with the source) are marked deleted; without it, every stored
    record the pull did not re-read is. A page of an entity in `run.new` is inserted
    unread; if one of its records was stored, the transaction is rolled back and the page
    written again, compared with what is stored (as every later page of that entity).
    """
    if page.entity in run.new:
        try:
            return _commit_page(engine, run, page, policy, now, absent, lease, new=True)
        except AlreadyStored:
            run.new.discard(page.entity)
    return _commit_page(engine, run, page, policy, now, absent, lease, new=False)


def _commit_page(engine, run, page, policy, now, absent, lease, *, new: bool) -> Written:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # The page's rows and its cursor commit together, so a commit lost to a server crash
            # only means its page is pulled again: the sync need not wait for each WAL flush.
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        if lease is not None and not renew(connection, *lease):
            raise LeaseBusy("lost the sync lease")
        assess = not run.pulling_everything
        resolves = page.entity in run.quarantine_open
        context = PageContext(run.company_id, policy, now, run.id, assess=assess, new=new, resolves=resolves)
        written = write_page(connection, page, context)
        gone = None
        if page.full_sync_complete and run.full_since_run is not None:
            if absent is None:
                absent = unseen(connection, run.company_id, run.full_since_run, run.may_miss)
            gone = mark_absent(connection, run.company_id, policy, absent)
            resolve_before(connection, run.company_id, run.full_since_run, now)
        cursor, full_since_run = page.cursor, (None if gone is not None else run.full_since_run)
        unseen_since = None if gone is not None else run.deletions_unseen_since or page.deletions_unseen_since
        _save_cursor(connection, run.company_id, cursor, full_since_run, now, unseen_since, run.books)
        tally = Tally(**vars(run.tally))
        tally.add(page, written)
        connection.execute(update(RUNS).where(RUNS.c.id == run.id).values(**tally.columns()))
    run.cursor, run.full_since_run, run.tally = cursor, full_since_run, tally  # only once committed
    if written.quarantined:
        run.quarantine_open.add(page.entity)
    run.deletions_unseen_since = unseen_since
    return replace(written, gone=gone)


def finish(engine: Engine, run: Run, status: RunStatus, error: str | None, now: datetime) -> None:
    """Close the run; a run that succeeded also lifts an expired daily-limit block."""
    with engine.begin() as connection:
        if status is RunStatus.OK:
            clear_rate_limit(connection, run.company_id)
        connection.execute(
            update(RUNS)
            .where(RUNS.c.id == run.id)
            .values(status=status, error=error, finished_at=now, api_calls=run.tally.api_calls)
        )


def fail(
    engine: Engine,
    run: Run,
    reason: FailReason,
    message: str,
    now: datetime,
    *,
    retry_at: datetime | None = None,
    recorded: bool = False,
) -> str:
    """Close the run as failed, with what the connection's status must say; returns the error
    recorded. `recorded`: the connection's status was already set by whoever found the failure
    (the credentials store, which knows whether new tokens landed meanwhile)."""
    with engine.begin() as connection:
        if reason is FailReason.RECONNECT_NEEDED and not recorded:
            mark_reconnect_needed(connection, run.company_id, message)
        elif reason is FailReason.DAILY_LIMIT and retry_at is not None:
            mark_rate_limited(connection, run.company_id, message, retry_at)
            message = f"{message}; resumes at {retry_at.isoformat()}"
        connection.execute(
            update(RUNS)
            .where(RUNS.c.id == run.id)
            .values(status=RunStatus.FAILED, error=message, finished_at=now, api_calls=run.tally.api_calls)
        )
    return message


class BooksChanged(Exception):
    """The company's rows were synced from other books than the ones it is connected to now."""


def _other_books(company_id: str, stored: str | None, books: str | None) -> str | None:
    """Why `company_id` must not sync: its rows and its connection are of other books."""
    return books_changed(company_id, stored, books) if stored and books and stored != books else None


def books_changed(company_id: str, stored: str, books: str) -> str:
    """What an operator reads when `company_id`'s rows and connection belong to other books."""
    return (
        f"company {company_id!r} holds rows synced from {stored}, but is connected to {books}: "
        f"if the id now names another company, delete the old rows first (`arsync company remove "
        f"{company_id} --purge`); if the connection's id was mistyped, correct it"
    )


def stored_books(engine: Engine, company_ids: Collection[str]) -> dict[str, str]:
    """Whose books each company's stored rows were synced from, where the store knows it."""
    with engine.connect() as connection:
        return {
            company_id: books
            for company_id in company_ids
            if (books := _load_cursor(connection, company_id).books) is not None
        }


class _Stored(NamedTuple):
    """What `_save_cursor` kept beside the connector's cursor."""

    connector: dict | None = None
    full_since_run: int | None = None
    unseen_since: str | None = None
    books: str | None = None


def _load_cursor(connection: Connection, company_id: str) -> _Stored:
    raw = connection.scalar(select(CURSORS.c.cursor).where(CURSORS.c.company_id == company_id))
    if raw is None:
        return _Stored()
    data = json.loads(raw)
    keys = ("connector", "full_since_run", "deletions_unseen_since", "books")
    return _Stored(*(data.get(key) for key in keys))


def _save_cursor(
    connection: Connection,
    company_id: str,
    cursor: dict,
    full_since_run: int | None,
    now: datetime,
    deletions_unseen_since: str | None = None,
    books: str | None = None,
) -> None:
    kept = {"deletions_unseen_since": deletions_unseen_since} if deletions_unseen_since else {}
    if books:
        kept["books"] = books
    payload = json.dumps({"connector": cursor, "full_since_run": full_since_run, **kept})
    updated = connection.execute(
        update(CURSORS).where(CURSORS.c.company_id == company_id).values(cursor=payload, updated_at=now)
    ).rowcount
    if not updated:
        connection.execute(insert(CURSORS).values(company_id=company_id, cursor=payload, updated_at=now))
