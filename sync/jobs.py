"""The daemon's periodic jobs, each run by one worker of the fleet per interval.

Reminder planning, mail dispatch and finishing cut-off token refreshes every minute,
customer health and the pruning of sync runs and outbox messages past their retentions
hourly, token keep-alive daily; each is a function of the effective configuration, the store
and a time, so the daemon only decides when (and, through `store.jobs`, on which worker)
they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from connectors.base import ConnectorError, Stopped, Tokens
from connectors.oauth import TokenManager
from connectors.quickbooks.options import QboOptions
from connectors.ratelimit import Pacer, make_pacer
from connectors.xero.options import XeroOptions
from mailer import retention as outbox_retention
from mailer.claim import expire_claims_of
from mailer.dispatch import dispatch
from mailer.environment import TemplateProblem
from mailer.withdraw import Withdrawal
from store import retention
from store.access_requests import companies_with_requested_invites
from store.connections import why_blocked
from store.credentials import DbCredentials, cut_off_refreshes
from store.crypto import SecretKeyError
from store.jobs import DISPATCH, REQUESTED
from store.workers import dead_workers
from sync.app import App
from sync.config import CompanyConfig, Config
from sync.invites import issue_requested
from sync.logging import REDACTOR
from sync.mail import stale_reminders, transport, window_for
from sync.reminders import plan_reminders
from sync.runner import pacing_for, recompute_health
from sync.settings import token_endpoint_for
from sync.token_health import KEEP_ALIVE_WITHIN

log = structlog.get_logger("arsync.daemon")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job runs with: the store, the effective configuration, time, stop flag, worker id."""

    app: App
    config: Config
    clock: Callable[[], datetime]
    stopping: Callable[[], bool]
    worker: str


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job: its name in `fleet_jobs`, its interval (before time scaling), what it does."""

    name: str
    every: timedelta
    run: Callable[[JobContext], None]


def plan(ctx: JobContext) -> None:
    """Plan due reminders of every company into the outbox.

    Each company on its own, as syncs are: one company's broken template (or crash) is
    logged under its name and never stops the others' reminders.
    """
    for company in ctx.config.companies:
        if ctx.stopping():
            return
        try:
            report = plan_reminders(ctx.app.engine, ctx.config, company, now=ctx.clock())
        except TemplateProblem as exc:  # the admin's to fix: what and where, no traceback
            log.error("daemon.reminders_failed", company=company.id, error=str(exc))
            continue
        except Exception:
            log.exception("daemon.reminders_failed", company=company.id)
            continue
        if report.planned:
            log.info("daemon.reminders_planned", company=company.id, emails=len(report.planned))


def answer_requests(ctx: JobContext) -> None:
    """Issue the invitations portal requests decided on and mail them at once (SPEC §2).

    A job of its own, brought forward by every request (`store.jobs.REQUESTED`): the mail
    dispatch may be working through a long backlog (a window opening on many reminders, a
    slow relay), and these go beside it, only these (`dispatch(only=...)`).
    """
    ids: list[int] = []
    requested = companies_with_requested_invites(ctx.app.engine)
    for company in ctx.config.companies:
        if company.id not in requested:
            continue
        if ctx.stopping():
            return
        try:
            issued = issue_requested(ctx.app.engine, ctx.config, company, now=ctx.clock(), into=ids)
        except TemplateProblem as exc:  # the admin's to fix; the requests wait for it
            log.error("daemon.requested_invitations_failed", company=company.id, error=str(exc))
            continue
        except Exception:  # one company's problem never holds the others' mail
            log.exception("daemon.requested_invitations_failed", company=company.id)
            continue
        if issued:
            log.info("daemon.requested_invitations", company=company.id, invitations=issued)
    if ids:
        _dispatch(ctx, only=ids)


def send(ctx: JobContext) -> None:
    """Dispatch the due outbox (rows are claimed one batch at a time, see `mailer.claim`).

    First, what a killed worker had claimed is settled: messages it had begun turn
    `in_doubt` (never re-sent), the rest of its batch is queued again.
    """
    dead = dead_workers(ctx.app.engine)
    if dead:
        with ctx.app.engine.begin() as connection:
            doubtful = expire_claims_of(connection, dead)
        if doubtful:
            log.warning("mail.in_doubt", ids=doubtful, reason="the worker that claimed them died")
    _dispatch(ctx, withdraw=stale_reminders(ctx.config))


def _dispatch(ctx: JobContext, *, withdraw: Withdrawal | None = None, only: list[int] | None = None) -> None:
    report = dispatch(
        ctx.app.engine,
        transport(ctx.config),
        now=ctx.clock(),
        window_for=window_for(ctx.config),
        withdraw=withdraw,
        clock=ctx.clock,  # a long backlog stops at a window's closing
        worker_id=ctx.worker,
        batch_size=100,
        stop=ctx.stopping,  # a stopping worker finishes the messages on their way, queues the rest
        only=only,
    )
    if report.sent or report.failed:
        log.info(
            "daemon.mail", sent=len(report.sent), failed=len(report.failed), retrying=len(report.retrying)
        )


def keep_alive(ctx: JobContext) -> None:
    """Refresh tokens whose refresh token would otherwise expire unused (Xero: 60 days).

    A refresh is a request to the provider like a sync's: it takes a slot of the company's
    budget, shared by every worker on PostgreSQL (`store.pacing`), as the syncs' do.

    Each company on its own: one whose tokens cannot be read (sealed with another
    `ARSYNC_SECRET_KEY`) or refreshed is logged under its name, and the companies after it
    still get theirs kept alive. A connection waiting for a reconnect (its refresh token was
    refused) or blocked by its daily limit is left alone.
    """
    _each_company(ctx, ctx.config.companies, _keep_alive, "daemon.keep_alive_failed")


def finish_refreshes(ctx: JobContext) -> None:
    """Refresh at once the tokens of companies whose refresh was cut off (`cut_off_refreshes`:
    a process killed between the provider's answer and the save), while Xero still answers
    the refresh token it sent; the next sync may come after that grace, and the keep-alive's
    refresh is a day away. Companies as the keep-alive takes them."""
    cut_off = cut_off_refreshes(ctx.app.engine)
    companies = [company for company in ctx.config.companies if company.id in cut_off]
    _each_company(ctx, companies, _finish_refresh, "daemon.refresh_finish_failed")


def _each_company(
    ctx: JobContext,
    companies: Iterable[CompanyConfig],
    job: Callable[[JobContext, CompanyConfig], None],
    failed: str,
) -> None:
    for company in companies:
        if ctx.stopping():
            return
        try:
            job(ctx, company)
        except Stopped:
            return
        except (ConnectorError, SecretKeyError) as exc:
            log.warning(failed, company=company.id, error=str(exc))
        except Exception:  # a bug or the store: this company's, never the job's
            log.exception(failed, company=company.id)


def _keep_alive(ctx: JobContext, company: CompanyConfig) -> None:
    held = _tokens_of(ctx, company)
    if held is None:
        return
    manager, expires = held[0], held[1].refresh_expires_at
    if expires is not None and expires - KEEP_ALIVE_WITHIN > ctx.clock():
        return  # far from expiry: no request to make (unknown expiry: refreshed to learn it)
    with _budget(ctx, company).slot():
        if manager.keep_alive(KEEP_ALIVE_WITHIN):  # checks again: another worker may have
            log.info("daemon.token_kept_alive", company=company.id)


def _finish_refresh(ctx: JobContext, company: CompanyConfig) -> None:
    held = _tokens_of(ctx, company)
    if held is None:
        return
    with _budget(ctx, company).slot():
        held[0].refresh()
    log.info("daemon.token_refresh_finished", company=company.id)


def _tokens_of(ctx: JobContext, company: CompanyConfig) -> tuple[TokenManager, Tokens] | None:
    """The company's token manager and stored tokens; None when there are none to refresh
    (not connected) or its syncs are blocked (waiting for a reconnect, or for its daily limit)."""
    if why_blocked(ctx.app.engine, company.id, ctx.clock()) is not None:
        return None
    credentials = DbCredentials(ctx.app.engine, company.id, ctx.app.box, remember=REDACTOR.remember)
    tokens = credentials.load()
    if tokens is None:
        return None
    REDACTOR.remember(company.connection.client_secret())
    return TokenManager(credentials, token_endpoint_for(company), clock=ctx.clock), tokens


def _budget(ctx: JobContext, company: CompanyConfig) -> Pacer:
    """The company's request budget, as its syncs' clients take it (the connector's limits)."""
    limits = (QboOptions if company.connection.kind == "quickbooks" else XeroOptions).parse({})
    pacing = pacing_for(ctx.app.engine, company.id, ctx.stopping)  # a stop ends the wait (Stopped)
    return make_pacer(pacing, limits.per_minute, 60.0, limits.concurrent)


def prune_runs(ctx: JobContext) -> None:
    """Delete the sync runs past `[store] keep_runs_days`, their counts kept for `/metrics`
    (`store.retention`: what is kept whatever its age, and why)."""
    engine = ctx.app.engine
    pruned = retention.prune_runs(
        engine, retention.retention_cutoff(engine, ctx.config.store.keep_runs_days), stopping=ctx.stopping
    )
    if pruned:
        log.info("daemon.runs_pruned", runs=pruned, keep_days=ctx.config.store.keep_runs_days)


def prune_outbox(ctx: JobContext) -> None:
    """Delete the settled outbox messages past `[store] keep_outbox_days` (`mailer.retention`:
    what is kept whatever its age, and why no message can go twice for it)."""
    engine = ctx.app.engine
    keep = ctx.config.store.keep_outbox_days
    cutoff = retention.retention_cutoff(engine, keep)
    pruned = outbox_retention.prune_outbox(engine, cutoff, stopping=ctx.stopping)
    if pruned:
        log.info("daemon.outbox_pruned", messages=pruned, keep_days=keep)


def health(ctx: JobContext) -> None:
    """Recompute every company's customer health: days past due advance without a sync."""
    for company in ctx.config.companies:
        if ctx.stopping():
            return
        recompute_health(ctx.app.engine, company.id, ctx.clock())


JOBS = (
    Job("reminders", timedelta(minutes=1), plan),
    Job(DISPATCH, timedelta(minutes=1), send),
    Job(REQUESTED, timedelta(minutes=1), answer_requests),  # and at once after a portal's request
    Job("keepalive", timedelta(days=1), keep_alive),
    Job("refreshes", timedelta(minutes=1), finish_refreshes),
    Job("health", timedelta(hours=1), health),  # each sync recomputes its company's too
    Job("prune_runs", timedelta(hours=1), prune_runs),  # an hour's runs: a batch or so each time
    Job("prune_outbox", timedelta(hours=1), prune_outbox),  # an hour's settled mail, likewise
)
