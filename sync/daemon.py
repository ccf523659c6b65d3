"""`arsync run`: the scheduled worker.

Jobs: each company's sync every `sync_interval_minutes` (with jitter; never two runs of one
company at once, also across workers, thanks to the store's sync lease), then its automatic
invitations; reminder planning and mail dispatch every minute; a daily token keep-alive.
SIGTERM/SIGINT set a stop flag: a sync ends after the page in hand, dispatch after the batch
in hand, and the process exits 0. A job that crashes is logged and never stops the others.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from connectors.base import ConnectorError
from connectors.oauth import TokenManager
from mailer.dispatch import dispatch
from sync.app import App
from sync.credentials import DbCredentials, worker_id
from sync.invites import invite
from sync.mail import transport, window_for
from sync.reminders import plan_reminders
from sync.runner import recompute_health, sync_one
from sync.settings import token_endpoint_for

log = structlog.get_logger("arsync.daemon")
KEEP_ALIVE_WITHIN = timedelta(days=14)


class Daemon:
    def __init__(
        self, app: App, *, time_scale: float = 1.0, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.app = app
        self.scale = time_scale  # >1 shortens every interval (tests, demos)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.owner = worker_id()
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(4, len(app.config.companies) + 2))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone=UTC,
        )

    def _seconds(self, seconds: float) -> float:
        return max(seconds / self.scale, 0.2)

    def schedule(self) -> None:
        now = datetime.now(UTC)
        for company in self.app.config.companies:
            self.scheduler.add_job(
                self._guard(f"sync:{company.id}", self.sync_company),
                args=[company.id],
                id=f"sync:{company.id}",
                trigger=IntervalTrigger(
                    seconds=self._seconds(company.sync_interval_minutes * 60),
                    jitter=min(30, self._seconds(30)),
                ),
                next_run_time=now,
            )
        every_minute = IntervalTrigger(seconds=self._seconds(60))
        self.scheduler.add_job(
            self._guard("reminders", self.plan),
            trigger=every_minute,
            id="reminders",
            next_run_time=now + timedelta(seconds=self._seconds(5)),
        )
        self.scheduler.add_job(
            self._guard("dispatch", self.dispatch),
            trigger=every_minute,
            id="dispatch",
            next_run_time=now + timedelta(seconds=self._seconds(10)),
        )
        self.scheduler.add_job(
            self._guard("keepalive", self.keep_alive),
            id="keepalive",
            trigger=IntervalTrigger(seconds=self._seconds(86400)),
            next_run_time=now,
        )
        self.scheduler.add_job(  # each sync recomputes too; this advances days past due without one
            self._guard("health", self.health),
            id="health",
            trigger=IntervalTrigger(seconds=self._seconds(3600)),
            next_run_time=now + timedelta(seconds=self._seconds(3600)),
        )

    def _guard(self, name: str, job: Callable[..., None]) -> Callable[..., None]:
        def run(*args: object) -> None:
            if self.stopping.is_set():
                return
            try:
                job(*args)
            except Exception:  # one job's crash never stops the others
                log.exception("daemon.job_failed", job=name)

        return run

    def sync_company(self, company_id: str) -> None:
        company = self.app.config.company(company_id)
        summary = sync_one(
            self.app.engine,
            self.app.box,
            company,
            owner=self.owner,
            clock=self.clock,
            stop=self.stopping.is_set,
        )
        if summary.status == "ok" and company.auto_invite:
            report = invite(
                self.app.engine, self.app.config, company, now=self.clock(), all_eligible=True, automatic=True
            )
            if report.invited:
                log.info("daemon.auto_invited", company=company_id, contacts=len(report.invited))

    def plan(self) -> None:
        for company in self.app.config.companies:
            if self.stopping.is_set():
                return
            report = plan_reminders(self.app.engine, self.app.config, company, now=self.clock())
            if report.planned:
                log.info("daemon.reminders_planned", company=company.id, emails=len(report.planned))

    def dispatch(self) -> None:
        report = dispatch(
            self.app.engine,
            transport(self.app.config),
            now=self.clock(),
            window_for=window_for(self.app.config),
            worker_id=self.owner,
            batch_size=100,
        )
        if report.sent or report.failed:
            log.info(
                "daemon.mail", sent=len(report.sent), failed=len(report.failed), retrying=len(report.retrying)
            )

    def keep_alive(self) -> None:
        """Refresh tokens whose refresh token would otherwise expire unused (Xero: 60 days)."""
        for company in self.app.config.companies:
            credentials = DbCredentials(self.app.engine, company.id, self.app.box)
            if credentials.load() is None:
                continue
            try:
                endpoint = token_endpoint_for(company)
                if TokenManager(credentials, endpoint, clock=self.clock).keep_alive(KEEP_ALIVE_WITHIN):
                    log.info("daemon.token_kept_alive", company=company.id)
            except ConnectorError as exc:
                log.warning("daemon.keep_alive_failed", company=company.id, error=str(exc))

    def health(self) -> None:
        """Recompute every company's customer health (hourly: a company's new day comes soon after)."""
        for company in self.app.config.companies:
            if self.stopping.is_set():
                return
            recompute_health(self.app.engine, company.id, self.clock())

    def run_until_stopped(self) -> None:
        """Start, then block until SIGTERM/SIGINT; finish the work in hand and return."""

        def on_signal(signum: int, _frame: object) -> None:
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.schedule()
        self.scheduler.start()
        log.info("daemon.started", worker=self.owner, companies=[c.id for c in self.app.config.companies])
        while not self.stopping.wait(0.5):
            pass
        self.scheduler.shutdown(wait=True)
        log.info("daemon.stopped", worker=self.owner)
