"""The QuickBooks Online connector: settings + credentials in, pages of records out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.base import CredentialsStore, cursor_problem
from connectors.oauth import TokenManager
from connectors.quickbooks.ahead import Ahead
from connectors.quickbooks.client import QboClient
from connectors.quickbooks.cursor import Cursor, CursorError, Listing, OutdatedCursor, start
from connectors.quickbooks.options import QboOptions
from connectors.quickbooks.present import confirm_present
from connectors.quickbooks.provider import PROVIDER
from connectors.quickbooks.pull import Puller
from connectors.registry import ConnectorSettings
from connectors.waits import with_stop
from portal_rules.records import Page

log = structlog.get_logger("arsync.connectors.quickbooks")
STARTS_OVER = (
    "the last full pull's pages cannot be checked past CDC's days: a full pull reads every "
    "record again and marks the ones deleted meanwhile"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class QuickBooksConnector:
    """One realm's pull. Builds its own SDK client, token manager and pacer (nothing shared)."""

    kind = "quickbooks"

    def __init__(self, settings: ConnectorSettings, credentials: CredentialsStore) -> None:
        self.settings = settings
        self.presence_calls = 0  # requests `confirm_present` made (ConfirmsPresence)
        self.options = with_stop(QboOptions.parse(settings.options), settings.stop)
        self.clock: Callable[[], datetime] = settings.clock or _utcnow
        endpoint = PROVIDER.endpoint(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_url=settings.token_url,
        )
        self.tokens = TokenManager(credentials, endpoint, clock=settings.token_clock or self.clock)
        self.client = QboClient(settings, self.tokens, self.options)

    @property
    def requests_made(self) -> int:
        """HTTP requests this connector made (every attempt, token refreshes): what a run that
        ends early records, its committed pages' or not (`sync.orchestrator`)."""
        return self.client.requests

    def pages(self, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        """Customers then invoices, page by page (see `connectors.quickbooks.pull`).

        `cursor=None` or `full=True`: a full pull; a cursor from the middle of a pull
        continues it; a finished pull's cursor gives an incremental pull.
        """
        state = start(cursor, full=full, unreadable=self._unreadable)
        if isinstance(state, Listing) and state.full and self.options.concurrent > 1:
            yield from Ahead(self.client, self.options).pages(state)  # ends in Done: no incremental after
            return
        yield from Puller(self.client, self.options, self.clock).pages(state)

    def confirm_present(self, entity: str, refs: Sequence[str]) -> set[str]:
        """The `refs` of `entity` QuickBooks still has (see `connectors.quickbooks.present`)."""
        present, calls = confirm_present(self.client, entity, refs)
        self.presence_calls += calls
        log.info(
            "quickbooks.presence_confirmed",
            company=self.settings.company_id,
            entity=entity,
            asked=len(set(refs)),
            present=len(present),
            api_calls=calls,
        )
        return present

    def cursor_problem(self, cursor: dict) -> str | None:
        """Why this connector cannot go on from `cursor` (`ChecksCursor`), or None: unreadable,
        or leading to a pull that reads every record again (`Puller.starts_over`)."""
        problem = cursor_problem(Cursor.from_dict, cursor, self._unreadable)
        if problem is not None:
            return problem
        if not Puller(self.client, self.options, self.clock).starts_over(Cursor.from_dict(cursor)):
            return None
        log.warning("quickbooks.cursor_older_than_cdc", company=self.settings.company_id, note=STARTS_OVER)
        return STARTS_OVER

    def _unreadable(self, error: CursorError) -> None:
        # Self-healing beats a sync that fails until someone runs --full by hand.
        if isinstance(error, OutdatedCursor):
            log.info("quickbooks.cursor_outdated", company=self.settings.company_id, reason=str(error))
            return
        log.warning("quickbooks.cursor_unreadable", company=self.settings.company_id, reason=str(error))
