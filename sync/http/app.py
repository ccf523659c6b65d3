"""The ASGI application factory: `uvicorn --factory sync.http.app:create_app` works as is.

`create_app()` reads the configuration as the CLI does (`$ARSYNC_CONFIG`, else
./arsync.toml); `arsync serve` passes the configuration it already loaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path

from fastapi import FastAPI

from store.db import make_engine
from sync.checks import check_http_secrets
from sync.cli import default_config_path
from sync.config import Config, load_config
from sync.http import history, ops, portal, webhooks
from sync.http.absolute_form import AbsoluteFormTargets
from sync.http.auth import install_key_first
from sync.http.body_limit import BodyLimit
from sync.http.context import ServerContext, WebhookSecrets
from sync.http.errors import install_error_handlers
from sync.http.head import HeadAsGet
from sync.http.metrics import registry_for
from sync.http.options import OptionsAllowed
from sync.http.schemas import ErrorOut
from sync.http.steady import SteadyAnswers
from sync.http.unexpected import UnexpectedErrors

POOL_SIZE = 20  # store connections kept open for the request handlers
# Seconds a request waits for SQLite's one writer, a PostgreSQL lock or a pooled connection
# before answering 503: well within the server's graceful stop (10 s), so a request in hand
# at SIGTERM still gets its answer
STORE_WAIT = 5.0
# Seconds one of /metrics' statements may run (the others' bound is STORE_WAIT). They count
# the sync runs and outbox messages kept: on this project's 2-core VM, 8.76 million runs
# (1,000 companies every 15 minutes for three months, the default `keep_runs_days`) took
# 2.2 s for the runs' count alone; older runs are pruned into totals, settled mail past
# `keep_outbox_days` deleted. Prometheus gives up first (scrape_timeout: 10 s by default, at
# most the scrape interval, 1 min by default), so this bound never cuts off an answer a
# scraper still waits for; it only ends a statement the store never finishes.
METRICS_STATEMENT_WAIT = 60.0
METRICS_POOL_SIZE = 2  # a scrape or two at a time, off the portal's connections


def create_app(
    config_path: str | Path | None = None,
    *,
    config: Config | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The arsync HTTP application over the configured store.

    It starts even when the store is not migrated yet (`/readyz` says so), so a service
    manager can start it before the migration job has run.
    """
    if config is None:
        # Only webhook keys are needed here: serving reads the store and records sync
        # requests, it never calls an accounting API nor the SMTP server (no client secrets).
        config = load_config(config_path or default_config_path(), require_secrets=False)
    check_http_secrets(config)
    # Handlers run on the thread pool (up to 40 at once): with the default 5 pooled
    # connections, every request beyond 5 opened and closed a connection of its own.
    # create=False: the CLI's reading commands refuse a SQLite file that is not there, and
    # the first /readyz made it empty (a mistyped or relative path became a new store)
    engine = make_engine(
        config.store.url, pool_size=POOL_SIZE, busy_timeout=STORE_WAIT, bounded=True, create=False
    )
    scrapes = make_engine(
        config.store.url,
        pool_size=METRICS_POOL_SIZE,
        busy_timeout=STORE_WAIT,
        bounded=True,
        statement_timeout=METRICS_STATEMENT_WAIT,
        create=False,
    )
    context = ServerContext(
        config=config,
        engine=engine,
        clock=clock or (lambda: datetime.now(UTC)),
        registry=registry_for(scrapes, lambda: [c.id for c in context.companies()]),
        secrets=WebhookSecrets(config.http.quickbooks_verifier_token(), config.http.xero_webhook_key()),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()
        scrapes.dispose()

    app = FastAPI(
        title="arsync",
        summary="Portal API, accounting webhooks, health and metrics of an arsync store.",
        version=package_version("arsync"),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # `/healthz/` was a 307 to an absolute URL of the Host header and the scheme seen here
        # (`http://` behind a proxy ending TLS): one spelling per path, any other a JSON 404
        redirect_slashes=False,
        # any route may meet a bug: its answer is ErrorOut too (`unexpected.py`), never a page
        responses={500: {"model": ErrorOut, "description": "An unexpected error; see the server's log"}},
    )
    app.state.context = context
    install_error_handlers(app)
    install_key_first(app)
    for area in (portal, history, webhooks, ops):
        app.include_router(area.router)
    # Innermost first: an unexpected error is answered inside the layers below, in its time
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(BodyLimit)
    app.add_middleware(OptionsAllowed)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SteadyAnswers)  # the body's reading and the key check fall inside
    app.add_middleware(AbsoluteFormTargets)  # outermost: every layer sees the path as routed
    return app
