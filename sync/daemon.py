"""`arsync run`: one worker of a fleet sharing one store (SPEC §11).

Every company has a row in the store's sync schedule. Each tick the worker claims due
companies (requested first, then oldest-due; `store.schedule`) up to `[daemon]
concurrency` syncs at once, one slot of which only requested syncs take
(`KEPT_FOR_REQUESTS`), runs them on a fixed thread pool, renews its claims while they run
and, on finish, releases each with its next due time. A sync request wakes the
loop at once on PostgreSQL (`store.wakeups`); SQLite workers see it at the next tick. The periodic jobs
(`sync.jobs`) are claimed the same way, once per interval across the fleet. Companies
added to or removed from the store are picked up every half minute.
SIGTERM/SIGINT set a stop flag: a sync ends after the page in hand, dispatch after the
batch in hand, and the process exits 0. A job that crashes is logged and never stops the
others.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import structlog

from mailer.environment import TemplateProblem
from store import jobs as fleet_jobs
from store import schedule
from store import workers as fleet_workers
from store.holds import ABANDONED_HOLDS
from store.owners import worker_id
from store.wakeups import RequestListener
from sync.app import App
from sync.config import CompanyConfig, ConfigError
from sync.invites import invite
from sync.jobs import JOBS, Job, JobContext
from sync.runner import sync_one

log = structlog.get_logger("arsync.daemon")
CLAIM_TTL = timedelta(minutes=2)  # a dead worker's companies go to the others after this
MIN_CLAIM_TTL = timedelta(seconds=3)  # even at a large test time scale
REFRESH_EVERY = timedelta(seconds=30)  # stored companies added or removed show up within this
RETRY_SKIPPED = timedelta(minutes=1)  # another process held the company's sync lease
RETRY_REQUESTED = timedelta(minutes=1)  # a requested sync that failed
# Slots of a worker that only requested syncs may take (when it runs more than one sync at
# once): a webhook's or portal's request starts within seconds even while every other slot
# runs a long sync (a large Xero company's full pull, paced to 60 calls a minute).
KEPT_FOR_REQUESTS = 1
_EARLIEST = datetime.min.replace(tzinfo=UTC)  # "at the next tick"
_NO_SIGNAL = 0  # written to the stop pipe when the loop ended without a signal


class Daemon:
    def __init__(
        self,
        app: App,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.app = app
        self.scale = time_scale  # >1 shortens every interval (tests, demos, benchmarks)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.owner = worker_id()
        self.concurrency = concurrency or app.config.daemon.concurrency
        self.config = app.config
        self.companies: dict[str, CompanyConfig] = {}
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.scheduled_running: set[str] = set()  # of `running`, the syncs nobody requested
        self.jobs_running: set[str] = set()
        self.claim_ttl = max(CLAIM_TTL / time_scale, MIN_CLAIM_TTL)
        self.tick = max(min(0.5, 2.0 / time_scale), 0.05)  # an idle tick is two reads
        self._next_refresh = self._next_beat = _EARLIEST
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sync")
        self.job_pool = ThreadPoolExecutor(len(JOBS), thread_name_prefix="job")

    def scaled(self, delta: timedelta) -> timedelta:
        return delta / self.scale

    def refresh(self, now: datetime) -> None:
        """Re-read the effective companies; schedule new ones."""
        try:
            companies = self.app.companies()
        except ConfigError as exc:  # e.g. an id added to the store that the file also has
            log.error("daemon.companies_unreadable", error=str(exc))
            return
        if {c.id for c in companies} != set(self.companies):
            log.info("daemon.companies", companies=len(companies))
        schedule.ensure_scheduled(self.app.engine, [c.id for c in companies], now=now)
        fleet_jobs.ensure_jobs(self.app.engine, [job.name for job in JOBS], now=now)
        fleet_workers.forget_dead(self.app.engine)
        self.companies = {c.id: c for c in companies}
        self.config = self.app.config.model_copy(update={"companies": companies})
        self._next_refresh = now + self.scaled(REFRESH_EVERY)

    def beat(self, now: datetime) -> None:
        """Renew this worker's claims and heartbeat before they can expire."""
        with self.lock:
            running, jobs = set(self.running), set(self.jobs_running)
        engine = self.app.engine
        schedule.renew(engine, self.owner, running, ttl=self.claim_ttl)
        fleet_jobs.renew_jobs(engine, self.owner, jobs, ttl=self.claim_ttl)
        fleet_workers.heartbeat(engine, self.owner, running, ttl=self.claim_ttl)
        self._next_beat = now + self.claim_ttl / 4

    def step(self) -> None:
        """One tick: refresh, heartbeat, then claim what is due while there is room."""
        now = self.clock()
        if now >= self._next_refresh:
            self.refresh(now)
        if now >= self._next_beat:
            self.beat(now)
        with self.lock:
            room = self.concurrency - len(self.running)
            kept = KEPT_FOR_REQUESTS if self.concurrency > KEPT_FOR_REQUESTS else 0
            scheduled = self.concurrency - kept - len(self.scheduled_running)
        now = self.clock()  # refresh and heartbeat write: a request may have come in meanwhile
        claims = schedule.claim_due(
            self.app.engine,
            self.owner,
            now=now,
            company_ids=self.companies,
            limit=room,
            ttl=self.claim_ttl,
            starving=self.scaled(schedule.STARVING),
            holds=[self.scaled(hold) for hold in ABANDONED_HOLDS],
            scheduled=scheduled,
        )
        for claim in claims:
            with self.lock:
                self.running.add(claim.company_id)
                if not claim.requested:
                    self.scheduled_running.add(claim.company_id)
            self.pool.submit(self.run_claim, claim, self.companies[claim.company_id])
        if claims:  # `status --workers` shows what this worker runs now, not a heartbeat later
            self.beat(now)
        with self.lock:
            idle = [job.name for job in JOBS if job.name not in self.jobs_running]
        due = set(fleet_jobs.due_jobs(self.app.engine, idle, now=now))
        for job in JOBS:
            if job.name in due and self._claim_job(job, now):
                self.job_pool.submit(self.run_job, job)

    def _claim_job(self, job: Job, now: datetime) -> bool:
        taken = fleet_jobs.claim_job(
            self.app.engine,
            job.name,
            self.owner,
            now=now,
            interval=self.scaled(job.every),
            ttl=self.claim_ttl,
        )
        if taken:
            with self.lock:
                self.jobs_running.add(job.name)
        return taken

    def run_claim(self, claim: schedule.Claim, company: CompanyConfig) -> None:
        """Run one claimed sync (and its automatic invitations), then release the claim."""
        started = self.clock()
        status = "failed"
        log.info(
            "daemon.sync_claimed",
            company=company.id,
            requested=claim.requested,
            due_at=claim.due_at.isoformat(),
            delay=round((started - claim.due_at).total_seconds(), 3),
        )
        if claim.abandoned:  # its last runs' workers died mid-sync: perhaps of this company's sync
            log.warning("daemon.sync_resumed", company=company.id, abandoned_in_a_row=claim.abandoned)
        try:
            summary = sync_one(
                self.app.engine,
                self.app.box,
                company,
                owner=self.owner,
                clock=self.clock,
                stop=self.stopping.is_set,
            )
            status = summary.status
            if summary.status == "failed" and summary.run_id is None:
                # failed before a run began (a stored company whose connector kind this worker
                # lacks, a connection missing a field): a failed run row says so, and this line
                log.error("daemon.sync_failed", company=company.id, error=summary.error)
            if summary.status == "ok" and company.auto_invite:
                self._auto_invite(company)
        except Exception:  # one company's crash never stops the others
            log.exception("daemon.job_failed", job=f"sync:{company.id}")
        finally:
            self._release(claim, company, started, status)

    def _release(self, claim: schedule.Claim, company: CompanyConfig, started: datetime, status: str) -> None:
        finished = self.clock()
        interval = self.scaled(timedelta(minutes=company.sync_interval_minutes))
        next_at = schedule.next_due(claim.next_due_at, started, finished, interval)
        if status == "interrupted":  # stopped by a signal: another worker resumes it now
            next_at = finished
        elif status == "skipped":
            next_at = finished + self.scaled(RETRY_SKIPPED)
        elif status == "failed" and claim.requested:
            # A request says the books changed (a webhook): a failure (a locked store, the API
            # down for a moment) is tried again in a minute, once, not an interval later.
            next_at = min(next_at, finished + self.scaled(RETRY_REQUESTED))
        try:
            schedule.release(
                self.app.engine, self.owner, company.id, next_at=next_at, finished=finished, status=status
            )
        except Exception:  # the claim then expires and another worker takes the company
            log.exception("daemon.release_failed", company=company.id)
        finally:
            with self.lock:
                self.running.discard(company.id)
                self.scheduled_running.discard(company.id)
            self._next_beat = _EARLIEST  # the next tick's heartbeat says it is done
            self.wake.set()

    def _auto_invite(self, company: CompanyConfig) -> None:
        try:
            report = invite(
                self.app.engine, self.config, company, now=self.clock(), all_eligible=True, automatic=True
            )
        except TemplateProblem as exc:  # the admin's to fix (no portal_url, broken templates)
            log.error("daemon.auto_invite_failed", company=company.id, error=str(exc))
            return
        if report.invited:
            log.info("daemon.auto_invited", company=company.id, contacts=len(report.invited))
        if report.changed:  # disabled, enabled or invited since they were read: left as they are
            log.info("daemon.auto_invite_left", company=company.id, contacts=len(report.changed))

    def run_job(self, job: Job) -> None:
        try:
            if not self.stopping.is_set():
                job.run(JobContext(self.app, self.config, self.clock, self.stopping.is_set, self.owner))
        except Exception:  # one job's crash never stops the others
            log.exception("daemon.job_failed", job=job.name)
        finally:
            try:
                fleet_jobs.finish_job(self.app.engine, job.name, self.owner)
            except Exception:
                log.exception("daemon.release_failed", job=job.name)
            with self.lock:
                self.jobs_running.discard(job.name)

    def run_until_stopped(self) -> None:
        """Start, then block until SIGTERM/SIGINT; finish the work in hand and return."""
        restore_signals = self._stop_on_signals()
        try:
            # `kill -USR1 PID` writes every thread's stack to the log's stream: what a worker that
            # does not stop, or stops making progress, is waiting for
            faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
            fleet_workers.register_worker(
                self.app.engine, self.owner, concurrency=self.concurrency, ttl=self.claim_ttl
            )
            if self.app.engine.dialect.name == "postgresql":  # requests wake the loop at once
                RequestListener(self.app.engine, lambda _company: self.wake.set(), self.stopping).start()
            log.info("daemon.started", worker=self.owner, concurrency=self.concurrency)
            while not self.stopping.is_set():
                try:
                    self.step()
                except Exception:  # the store went away for a moment: try again next tick
                    log.exception("daemon.tick_failed")
                self.wake.wait(self.tick)
                self.wake.clear()
            self.pool.shutdown(wait=True)
            self.job_pool.shutdown(wait=True)
            fleet_workers.unregister_worker(self.app.engine, self.owner)
            log.info("daemon.stopped", worker=self.owner)
        finally:
            restore_signals()

    def _stop_on_signals(self) -> Callable[[], None]:
        """From now on SIGTERM/SIGINT log `daemon.stopping`, set `stopping` and wake the loop;
        returns what puts the previous handlers back once the loop is over.

        A Python signal handler runs in the main thread between two of its bytecodes, which
        may be inside `wake.wait()` or `wake.clear()` while they hold the event's lock (a
        plain lock). A handler that set the event there (or logged: the redactor's lock)
        waited for its own thread's lock: the worker hung after SIGTERM, `daemon.stopping`
        logged and `daemon.stopped` never. So the handler takes no lock: it writes the
        signal's number to a pipe, and a thread of its own does the rest.
        """
        readable, writable = os.pipe()
        os.set_blocking(writable, False)

        def on_signal(signum: int, _frame: object) -> None:
            with suppress(BlockingIOError):  # the pipe full of signals: the stop is under way
                os.write(writable, bytes([signum]))

        def stopper() -> None:
            signum = os.read(readable, 1)[0]
            if signum == _NO_SIGNAL:  # the loop ended otherwise (`stopping` set in-process)
                return
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            self.stopping.set()
            self.wake.set()

        thread = threading.Thread(target=stopper, name="stopper", daemon=True)
        thread.start()
        previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)
            with suppress(BlockingIOError):
                os.write(writable, bytes([_NO_SIGNAL]))
            thread.join()
            os.close(readable)
            os.close(writable)

        return restore
