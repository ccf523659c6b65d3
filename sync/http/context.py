"""What every request handler needs, built once per application and reached through `Depends`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import structlog
from fastapi import Request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from store.db import require_migrated
from store.schedule import UnknownCompany, request_sync
from sync.companies import effective_companies
from sync.config import CompanyConfig, Config, ConfigError

log = structlog.get_logger("arsync.http")
COMPANIES_FRESH_FOR = 5.0  # seconds: companies added to or removed from the store show up within this
RECORDINGS_AT_ONCE = 4  # of the server's 20 pooled connections, the most webhooks may hold


class CompaniesUnreadable(Exception):
    """The configured and stored companies do not read as one set, and none was read before."""


@dataclass(frozen=True)
class WebhookSecrets:
    """The verifier token (QuickBooks) and webhook key (Xero); empty: that webhook is off."""

    quickbooks: str = ""
    xero: str = ""


@dataclass
class ServerContext:
    config: Config
    engine: Engine
    clock: Callable[[], datetime]
    registry: CollectorRegistry
    secrets: WebhookSecrets

    # webhook recordings that may wait for the store at once, each holding a connection
    recordings: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(RECORDINGS_AT_ONCE), init=False, repr=False
    )
    _known: tuple[float, dict[str, CompanyConfig]] | None = field(default=None, init=False, repr=False)
    # why the companies could not be read last time (an id both in the file and the store)
    problem: str | None = field(default=None, init=False)

    def companies(self) -> list[CompanyConfig]:
        """The file's companies and those added with `arsync company add` (read again after
        COMPANIES_FRESH_FOR seconds: every request needs them, few requests follow a change)."""
        return list(self._companies().values())

    def company(self, company_id: str) -> CompanyConfig | None:
        """The company with this id, or None."""
        return self._companies().get(company_id)

    def _companies(self) -> dict[str, CompanyConfig]:
        """The companies, read again when stale. Companies that stop reading as one set (an id
        added to the store that this server's file also has) are an operator's mistake about
        one company: the last set read keeps serving every other, as `arsync run` does, and
        the error is logged; with no set read yet, it is raised (`CompaniesUnreadable`)."""
        known, now = self._known, time.monotonic()
        if known is None or now - known[0] >= COMPANIES_FRESH_FOR:
            # A store behind (or ahead of) this code answers 503 on every route, as `/readyz`
            # says, rather than serving and writing through an older schema (`StoreNotMigrated`).
            require_migrated(self.engine)
            try:
                companies = effective_companies(self.config, self.engine)
            except ConfigError as exc:
                if str(exc) != self.problem:  # once per distinct problem, not per request
                    log.error("http.companies_unreadable", error=str(exc), serving="the last companies read")
                self.problem = str(exc)
                if known is None:
                    raise CompaniesUnreadable(str(exc)) from None
                known = self._known = (now, known[1])
            else:
                self.problem = None
                known = self._known = (now, {c.id: c for c in companies})
        return known[1]

    def today(self, company: CompanyConfig) -> date:
        """The company's local date now: "past due" and aging are decided in its time zone."""
        return self.clock().astimezone(ZoneInfo(company.timezone)).date()

    def companies_connected_to(self, kind: str, sources: Iterable[str]) -> list[str]:
        """Ids of the companies whose connection is one of `sources` (realm ids or tenant ids).

        Several companies may read one realm (other settings, same books): each is named.
        """
        wanted = {s.lower() for s in sources}
        if not wanted:
            return []
        found = []
        for company in self.companies():
            connection = company.connection
            source = connection.realm_id if kind == "quickbooks" else connection.tenant_id
            if connection.kind == kind and source and source.lower() in wanted:
                found.append(company.id)
        return found

    def request_syncs_for(self, kind: str, sources: Iterable[str]) -> list[str]:
        """Ask the running workers for an incremental sync of each company connected to
        `sources` (coalesced with any request not yet started); the companies named."""
        companies = self.companies_connected_to(kind, sources)
        now = self.clock()
        for company_id in companies:
            try:
                request_sync(self.engine, company_id, now=now, reason=f"{kind} webhook")
            except UnknownCompany:  # not registered by any arsync process yet: nothing to coalesce into
                log.warning("webhook.company_not_scheduled", company=company_id)
        log.info("webhook.syncs_requested", kind=kind, companies=companies)
        return companies


async def server_context(request: Request) -> ServerContext:
    """FastAPI dependency: the application's context (async: no thread hop for a lookup)."""
    return request.app.state.context
