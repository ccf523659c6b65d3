"""Xero listing pages asked for ahead: as many in flight as Xero allows, few held answered.

A pass reads four listings in order (contacts, sales invoices, customer payments, customer
credit notes), each with the If-Modified-Since its cursor fixes for the whole pass. A paged
answer's `pagination.pageCount` says which pages of its listing exist; those are asked for
in the order the pull reads them, on up to `concurrent` threads (the client's pacer holds
Xero's 5 in flight and 60 a minute, whatever runs here). A listing's first page does not
wait for the previous listing's end: it may be asked one listing past the first listing
whose end is not known yet, no further. So a pass starts with the first pages of contacts
and invoices together (payments' waits until contacts' answer has said where they end), and
a listing's tail overlaps the next ones' start. The pull goes on page by page exactly as
before: each page is still normalized, yielded and committed with its cursor in order, so a
killed sync resumes from its last page. With `concurrent = 1` this module is not used.

Every page asked is one a page-by-page pull running the pass to its end asks for (pages up
to pageCount, and each listing's first page), and no more than X-MinLimit-Remaining and
X-DayLimit-Remaining say this minute and this day still allow (a day's quota running out
stops the pull where a page-by-page one would stop). The order differs in one way: a
listing's first page may go before the previous listing's later pages. The cost is in a
pass that stops early: pages asked ahead of the page it stopped at are requests a
page-by-page pull would not have made. Within a listing that was so before; now a pass that
stops at a listing's first page (an error, a 401, the day limit) may also have asked the
next listing's first page: one request. Likewise no X-MinLimit-Remaining is known before
the first answer: when another app has spent the minute, both first pages may meet the 429
(each waits it out and is asked again).

In flight and held are bounded apart: up to `concurrent` requests in flight, and a new one
starts only while fewer than `concurrent + PAGES_HELD` pages are in flight or answered and
not yet read, so memory holds a few decoded pages, never a listing. Pages the pull passes by
(a listing that ended before its pageCount) are dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import structlog

from connectors.arenas import limit_arenas
from connectors.xero.client import Listing, XeroClient
from connectors.xero.cursor import Cursor
from connectors.xero.options import XeroOptions
from portal_rules.records import Entity

log = structlog.get_logger("arsync.connectors.xero")
Key = tuple[Entity, int]
Fetch = Callable[[int, datetime | None], Listing]

# Answered pages held beyond the requests in flight, at most: a decoded page of 1000
# invoices is ~1.5 MB, so a slow store holds at most concurrent + 3 of them (~12 MB).
PAGES_HELD = 3

# Listings whose first page may be asked past the first listing whose end is not known yet.
# One starts a pass with two requests instead of one (contacts and invoices: each listing's
# pageCount comes with its first page), a round less at the start. All four first pages at
# once saved nothing more (measured at 5 in flight, 1 s a request: the same wall time), and
# each is one more request a pass stopped at its first page would not have made.
LISTINGS_AHEAD = 1


@dataclass
class _Plan:
    """One listing of the pass: which of its pages are known to exist, and which are asked."""

    entity: Entity
    order: int  # its place in the pass
    since: datetime | None
    fetch: Fetch
    first: int  # the first page the pass reads (1, or the cursor's page when resuming)
    next: int  # the next page to ask for
    last: int  # the last page known to exist (the first one, until a pageCount says more)
    counted: bool = False  # an answer said where the listing ends (pageCount, or no records)
    passed: bool = False  # the pull has gone on to a later listing
    items: int | None = None  # the listing's itemCount in the answer of the page read last


class Ahead:
    """The listing calls of a `XeroClient` for one pass, answered from pages asked ahead."""

    def __init__(self, client: XeroClient, cursor: Cursor) -> None:
        self.client = client
        self.concurrent = client.options.concurrent
        self._fetches: dict[Entity, Fetch] = {
            "customers": client.contacts,
            "invoices": client.invoices,
            "payments": client.payments,
            "credits": client.credit_notes,
        }
        entities = list(self._fetches)
        left = entities[entities.index(cursor.phase) :] if cursor.phase in entities else []
        self._plans: dict[Entity, _Plan] = {}
        for order, entity in enumerate(left):
            first = cursor.page if entity == cursor.phase else 1
            since = cursor.if_modified_since(entity)
            self._plans[entity] = _Plan(entity, order, since, self._fetches[entity], first, first, first)
        self._asked: dict[Key, Future[Listing]] = {}  # in flight or answered, not yet read
        self._answered: set[Key] = set()  # those of `_asked` that are answered
        self._in_flight = 0  # requests running, still in `_asked` or dropped
        self._closed = False
        self._lock = threading.RLock()  # reentrant: a future done at once runs its callback here
        limit_arenas()  # before the fetching threads allocate (each would keep an arena's high-water mark)
        self._pool = ThreadPoolExecutor(self.concurrent, thread_name_prefix="xero-ahead")

    @property
    def options(self) -> XeroOptions:
        return self.client.options

    @property
    def tenant_id(self) -> str:
        return self.client.tenant_id

    def contacts(self, page: int, since: datetime | None) -> Listing:
        return self._page("customers", page, since)

    def invoices(self, page: int, since: datetime | None) -> Listing:
        return self._page("invoices", page, since)

    def payments(self, page: int, since: datetime | None) -> Listing:
        return self._page("payments", page, since)

    def credit_notes(self, page: int, since: datetime | None) -> Listing:
        return self._page("credits", page, since)

    def contacts_by_id(self, ids: list[str]) -> Listing:
        return self.client.contacts_by_id(ids)

    def close(self) -> None:
        """Stop asking; requests in flight finish (their pages are dropped)."""
        with self._lock:
            self._closed = True
            self._asked.clear()
            self._answered.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _page(self, entity: Entity, page: int, since: datetime | None) -> Listing:
        plan = self._plans.get(entity)
        if plan is None or plan.passed or plan.since != since:  # not as planned: asked as it comes
            return self._fetches[entity](page, since)
        with self._lock:
            self._reach(plan, page)
            self._fill()  # the page read now first, unless a cap holds it
            future = self._asked.pop((entity, page), None)
            self._answered.discard((entity, page))
            plan.next = max(plan.next, page + 1)
        listing = future.result() if future is not None else plan.fetch(page, since)
        if _behind(plan.items, listing):
            listing = _asked_again(plan, page, since, listing)
        with self._lock:  # its pageCount may not be learnt yet: result() returns before callbacks run
            plan.items = listing.item_count
            self._learn(plan, listing)
            self._fill()
        return listing

    def _reach(self, plan: _Plan, page: int) -> None:
        """The pull reads `page` of `plan` now: no earlier listing or page will be read."""
        for earlier in self._plans.values():
            earlier.passed = earlier.passed or earlier.order < plan.order
        plan.next, plan.last = max(plan.next, page), max(plan.last, page)
        here = (plan.order, page)
        for key in [key for key in self._asked if (self._plans[key[0]].order, key[1]) < here]:
            del self._asked[key]
            self._answered.discard(key)

    def _fill(self) -> None:
        """Ask for the next pages the pull will read, in its order, while the caps allow."""
        while (
            not self._closed
            and self._in_flight < self.concurrent
            and self._in_flight + len(self._answered) < self.concurrent + PAGES_HELD
            and self._within_limits()
        ):
            plan = self._next_plan()
            if plan is None:
                return
            key, plan.next = (plan.entity, plan.next), plan.next + 1
            future = self._pool.submit(plan.fetch, key[1], plan.since)
            self._in_flight += 1
            self._asked[key] = future
            future.add_done_callback(partial(self._done, plan, key))

    def _next_plan(self) -> _Plan | None:
        """The listing with the next page the pull will read that is not asked yet. Past the
        first listing whose end is not known, only the first pages of the next
        `LISTINGS_AHEAD` listings: that listing may have more pages to read before them."""
        beyond: int | None = None  # listings past the first one whose end is unknown, still to start
        for plan in self._plans.values():
            if plan.passed:
                continue
            if beyond is None and plan.next <= plan.last:
                return plan
            if beyond is None:
                beyond = LISTINGS_AHEAD if not plan.counted else None
                continue
            if beyond == 0:
                return None
            if plan.next == plan.first:
                return plan
            beyond -= 1
        return None

    def _done(self, plan: _Plan, key: Key, future: Future[Listing]) -> None:
        """A request ended: the next pages may go, unless it failed. A failed page (after the
        client's retries) fails the pass when the pull reads it, so pages asked past it would
        be calls spent for nothing; one the pull passes by (its listing ended sooner) leaves
        the pull reading page by page, as it would with `concurrent = 1`."""
        with self._lock:
            self._in_flight -= 1
            if self._asked.get(key) is future:
                self._answered.add(key)
            if not future.cancelled():
                if future.exception() is None:
                    self._learn(plan, future.result())
                else:
                    self._closed = True  # stop asking; the failed answer stays for the pull to meet
            self._fill()

    def _learn(self, plan: _Plan, listing: Listing) -> None:
        """A paged answer's pageCount: the pages of its listing up to there exist (no records:
        the listing ends there)."""
        if plan.passed or (listing.items and listing.page_count is None):
            return
        plan.counted = True
        if listing.items:
            plan.last = max(plan.last, listing.page_count or 0)

    def _within_limits(self) -> bool:
        """False once Xero's X-MinLimit-Remaining or X-DayLimit-Remaining, less the requests
        in flight, says the minute or the day is spent (by us or another app)."""
        counts = (self.client.pacer.remaining_hint, self.client.day_remaining)
        return all(remaining is None or remaining - self._in_flight > 0 for remaining in counts)


def _behind(items_before: int | None, listing: Listing) -> bool:
    """Whether this page was answered from an older state of its listing than the page read
    before it: its itemCount is lower (records only ever enter a listing: Xero keeps deleted
    and voided documents, and a record changed during an incremental pass joins it)."""
    return items_before is not None and listing.item_count is not None and listing.item_count < items_before


def _asked_again(plan: _Plan, page: int, since: datetime | None, stale: Listing) -> Listing:
    """`page` asked again, now that the page before it is in.

    Pages asked ahead are answered in any order. A record entering the listing before the
    end of page k (created during a full pass, or changed during an incremental one; ids are
    random) pushes page k's last record onto page k+1: if k+1 was answered before that and k
    after, the record is on neither page, and nothing would read it again. Page k's answer
    counts one record more than page k+1's then; asked again, page k+1 holds it (at worst a
    record read twice, as in a pull one page at a time). The cost: one request more, only
    when records entered the listing while its pages were asked."""
    again = plan.fetch(page, since)
    log.info(
        "xero.page_asked_again",
        entity=plan.entity,
        page=page,
        items_before=plan.items,
        items_then=stale.item_count,
        items_now=again.item_count,
    )
    return again._replace(calls=again.calls + stale.calls)
