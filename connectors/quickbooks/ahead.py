"""A full listing with pages fetched ahead: QuickBooks' concurrency used, pages still in order.

Fetched one at a time, a full pull waits requests x latency; QuickBooks allows 10 requests
in flight per realm (the client's limiter holds that cap and the 500/minute, whatever
runs here). So pages are requested ahead on a few threads and yielded strictly in order,
each with the cursor that resumes after it: the orchestrator commits them one by one as
before, and a sync killed at any point resumes from its last committed page.

Which pages exist is learnt without requests a sequential pull would not make, but one:
- the first page of every entity left is asked for at once (customers, invoices, payments,
  credit memos);
- an entity whose first page is full is counted (`SELECT COUNT(*)`, one request), then
  its remaining pages are asked for ahead, at most `concurrent` pages outstanding (in
  flight or waiting to be stored), so memory stays bounded;
- a short page ends its entity, as in a sequential pull; so does reaching the count, which
  saves the empty page a sequential pull reads when n is a multiple of 1000: a pull costs
  ceil(n/1000) requests per entity, plus the count when there is more than one page.
Records added after the count are read by the next incremental pull, which starts from
this pull's first server time (as for a record added behind a sequential pull's last page).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.base import ConnectorError
from connectors.quickbooks.client import QboClient, Reply
from connectors.quickbooks.cursor import ENTITIES, Listing, State
from connectors.quickbooks.normalize import normalize_all
from connectors.quickbooks.options import QboOptions
from connectors.quickbooks.pull import TABLES, _advance, _page, _query_rows, server_time, statement
from portal_rules.records import Page


@dataclass
class _Entity:
    """One entity's pages asked for and not yet yielded (oldest first), and its count."""

    template: Listing  # the entity's first page; later pages differ in `start` only
    next_start: int  # STARTPOSITION of the next page to ask for
    queue: deque[tuple[Listing, Future[Reply]]] = field(default_factory=deque)
    total: int | None = None  # records, once counted


class Ahead:
    """One full listing's pages, fetched ahead on `options.concurrent` threads."""

    def __init__(self, client: QboClient, options: QboOptions) -> None:
        self.client, self.size, self.window = client, options.page_size, options.concurrent
        self.home_currency = options.home_currency
        self.began: str | None = None
        self._pool = ThreadPoolExecutor(self.window, thread_name_prefix="qbo-ahead")

    def pages(self, listing: Listing) -> Generator[Page, None, State]:
        """Every page of the full listing from `listing` on, in order; returns the state after."""
        self.began = listing.seen
        try:
            starts = [listing]
            while starts[-1].entity != ENTITIES[-1]:
                starts.append(starts[-1].next_entity())
            entities = [self._entity(start) for start in starts]  # every first page asked at once
            state: State = listing
            for entity in entities:
                while True:
                    state, page = self._next(entity)
                    yield page
                    if not isinstance(state, Listing) or state.entity != page.entity:
                        break  # the entity ended; anything still queued for it lies past its end
            return state
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _entity(self, start: Listing) -> _Entity:
        entity = _Entity(start, start.start + self.size)
        entity.queue.append(self._ask(start))
        return entity

    def _ask(self, state: Listing) -> tuple[Listing, Future[Reply]]:
        return state, self._pool.submit(self.client.query, statement(state, self.size))

    def _next(self, entity: _Entity) -> tuple[State, Page]:
        """Wait for the entity's oldest page, ask for more ahead, and build its `Page`."""
        state, future = entity.queue.popleft()
        reply = future.result()
        rows = _query_rows(reply.body, state.entity)
        self.began = self.began or server_time(reply.body)
        calls, full = reply.calls, len(rows) >= self.size
        if full and entity.total is None:  # more than one page: how many?
            counted = self.client.query(count_statement(state))
            calls, entity.total = calls + counted.calls, _total(counted.body)
        self._top_up(entity)
        last = not full or (entity.total is not None and state.start - 1 + len(rows) >= entity.total)
        following = _advance(replace(state, seen=self.began), rows, last)
        records, quarantined = normalize_all(state.entity, rows, self.home_currency)
        complete = state.entity == ENTITIES[-1] and last
        return following, _page(state.entity, records, quarantined, following.to_dict(), calls, complete)

    def _top_up(self, entity: _Entity) -> None:
        """Ask for counted pages not yet asked for, at most `window` outstanding."""
        if entity.total is None:
            return
        while entity.next_start <= entity.total and len(entity.queue) < self.window:
            entity.queue.append(self._ask(replace(entity.template, start=entity.next_start)))
            entity.next_start += self.size


def count_statement(listing: Listing) -> str:
    """`SELECT COUNT(*)` over what `statement(listing)` pages through."""
    where = " WHERE Active IN (true,false)" if listing.entity == "customers" else ""
    return f"SELECT COUNT(*) FROM {TABLES[listing.entity]}{where}"


def _total(body: Any) -> int:
    response = body.get("QueryResponse") if isinstance(body, dict) else None
    total = response.get("totalCount") if isinstance(response, dict) else None
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ConnectorError(f"unexpected QuickBooks COUNT answer: {total!r}")
    return total
