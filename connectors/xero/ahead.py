"""Xero listing pages asked for ahead, once Xero has said how many there are.

A paged GET /Contacts or /Invoices answers with `pagination.pageCount`; from then on the
next pages of that listing are requested on a few threads (at most `PAGES_AHEAD`, within
`concurrent`; the client's pacer holds Xero's 5 in flight and 60 a minute, whatever runs
here) while the pull goes on page by page exactly as before: each page is still normalized, yielded
and committed with its cursor in order, so a killed sync resumes from its last page.
Nothing is asked for that a sequential pull would not ask for: only pages up to pageCount,
and no more than X-MinLimit-Remaining says this minute still allows.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from connectors.xero.client import Listing, XeroClient
from connectors.xero.options import XeroOptions
from portal_rules.records import Entity

Key = tuple[Entity, int, datetime | None]

# Pages asked ahead at once, at most (and never more than Xero's 5 in flight): each is held
# decoded until its turn, so memory stays flat; at 60 calls a minute more would not be faster.
PAGES_AHEAD = 4


class Ahead:
    """The listing calls of a `XeroClient`, answered from pages fetched ahead when possible."""

    def __init__(self, client: XeroClient) -> None:
        self.client = client
        self.window = max(1, min(client.options.concurrent, PAGES_AHEAD))
        self._pool = ThreadPoolExecutor(self.window, thread_name_prefix="xero-ahead")
        self._ahead: dict[Key, Future[Listing]] = {}

    @property
    def options(self) -> XeroOptions:
        return self.client.options

    @property
    def tenant_id(self) -> str:
        return self.client.tenant_id

    def contacts(self, page: int, since: datetime | None) -> Listing:
        return self._page(("customers", page, since), self.client.contacts)

    def invoices(self, page: int, since: datetime | None) -> Listing:
        return self._page(("invoices", page, since), self.client.invoices)

    def payments(self, page: int, since: datetime | None) -> Listing:
        return self._page(("payments", page, since), self.client.payments)

    def credit_notes(self, page: int, since: datetime | None) -> Listing:
        return self._page(("credits", page, since), self.client.credit_notes)

    def contacts_by_id(self, ids: list[str]) -> Listing:
        return self.client.contacts_by_id(ids)

    def close(self) -> None:
        """Stop asking; requests in flight finish (their pages are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _page(self, key: Key, fetch: Callable[[int, datetime | None], Listing]) -> Listing:
        entity, page, since = key
        future = self._ahead.pop(key, None)
        listing = future.result() if future is not None else fetch(page, since)
        if listing.items and listing.page_count is not None:
            budget = self._budget()
            for later in range(page + 1, min(listing.page_count, page + self.window) + 1):
                if (entity, later, since) not in self._ahead and budget > 0:
                    self._ahead[(entity, later, since)] = self._pool.submit(fetch, later, since)
                    budget -= 1
        return listing

    def _budget(self) -> int:
        """How many more pages may be asked for now: the window, or fewer when Xero's
        X-MinLimit-Remaining says the minute is nearly spent (by us or another app)."""
        remaining = self.client.pacer.remaining_hint
        if remaining is None:
            return self.window
        return remaining - sum(1 for future in self._ahead.values() if not future.done())
