"""The Xero connector: settings and credentials in, pages of normalized records out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import structlog

from connectors.base import ConnectorError, CredentialsStore, CursorError, OutdatedCursor, cursor_problem
from connectors.oauth import TokenManager
from connectors.registry import ConnectorSettings
from connectors.waits import with_stop
from connectors.xero import cursor as cursors
from connectors.xero.client import XeroClient
from connectors.xero.options import XeroOptions
from connectors.xero.present import confirm_present
from connectors.xero.provider import PROVIDER
from connectors.xero.pull import pages
from portal_rules.records import Page

log = structlog.get_logger("arsync.connectors.xero")


class XeroConnector:
    """One Xero tenant (organisation). Builds no network connection until `pages()` runs."""

    kind = "xero"

    def __init__(self, settings: ConnectorSettings, credentials: CredentialsStore) -> None:
        if not settings.tenant_id:
            raise ConnectorError(f"company {settings.company_id}: the Xero connection needs a tenant_id")
        self.company_id = settings.company_id
        self.presence_calls = 0  # requests `confirm_present` made (ConfirmsPresence)
        options = with_stop(XeroOptions.parse(settings.options), settings.stop)
        clock = settings.clock or (lambda: datetime.now(UTC))
        endpoint = PROVIDER.endpoint(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_url=settings.token_url,
        )
        self.tokens = TokenManager(credentials, endpoint, clock=settings.token_clock or clock)
        self.client = XeroClient(
            company_id=settings.company_id,
            tenant_id=settings.tenant_id,
            base_url=settings.api_base_url.rstrip("/"),
            tokens=self.tokens,
            options=options,
            clock=settings.token_clock or clock,  # a daily limit's end is real time, as tokens' are
            pacing=settings.pacing,
        )

    @property
    def requests_made(self) -> int:
        """HTTP requests this connector made (every attempt, token refreshes): what a run that
        ends early records, its committed pages' or not (`sync.orchestrator`)."""
        return self.client.requests

    def pages(self, cursor: dict | None, *, full: bool = False) -> Iterator[Page]:
        """Customers then sales invoices, page by page (see `connectors.xero.pull`)."""
        return pages(self.client, cursors.start(cursor, full=full, unreadable=self._unreadable))

    def cursor_problem(self, cursor: dict) -> str | None:
        """Why this connector cannot go on from `cursor` (`ChecksCursor`), or None."""
        return cursor_problem(cursors.Cursor.from_dict, cursor, self._unreadable)

    def _unreadable(self, error: CursorError) -> None:
        # Self-healing beats a sync that fails until someone runs --full by hand.
        if isinstance(error, OutdatedCursor):
            log.info("xero.cursor_outdated", company=self.company_id, reason=str(error))
            return
        log.warning("xero.cursor_unreadable", company=self.company_id, reason=str(error))

    def confirm_present(self, entity: str, refs: Sequence[str]) -> set[str]:
        """The `refs` of `entity` Xero still has, not deleted (see `connectors.xero.present`)."""
        present, calls = confirm_present(self.client, entity, refs)
        self.presence_calls += calls
        log.info(
            "xero.presence_confirmed",
            company=self.company_id,
            entity=entity,
            asked=len(set(refs)),
            present=len(present),
            api_calls=calls,
        )
        return present
