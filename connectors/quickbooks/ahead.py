"""A full listing with pages fetched ahead: QuickBooks' concurrency used, pages still in order.

Fetched one at a time, a full pull waits requests x latency; QuickBooks allows 10 requests
in flight per realm (the client's limiter holds that cap and the 500/minute, whatever
runs here). So pages are requested ahead on a few threads and yielded strictly in order,
each with the cursor that resumes after it: the orchestrator commits them one by one as
before, and a sync killed at any point resumes from its last committed page.

Which pages exist is learnt in the pull's first request, which a sequential pull makes too:
one `/batch` request carries the first page of the listing and a `SELECT COUNT(*)` of every
entity left (customers, invoices, payments, credit memos). From the counts every page is
known, so the pull asks exactly ceil(n/1000) pages per entity (none for an entity with
nothing: its empty page is made here, with no request), the batch's own page included:
the page-limit minimum, where a sequential pull reads an empty page after an entity whose
count is a multiple of 1000. The counts are also each page's `total` (progress displays).
The first page of each later entity is asked beside the batch, as far as the window allows
(first pages need no count): the first round of latency brings four pages, not one, so a
small company's pull takes one round where it took two, and a large one's last round has
three pages fewer to store after its answers are in. That costs a request only for an
entity the counts then show empty (its early page is read like any other: empty, or with
what was added since the count), at most three a pull.

As many requests are in flight as the realm's cap allows (10), across entity boundaries,
so a slow API is waited for in parallel, and the next one starts as soon as one's body is in
(reading it, ~15 ms in the page decoder, no longer holds one of the realm's requests), not
when the pull gets to its page (with 1 s a request, waiting for the store to take
each answered page before asking the next put up to 0.4 s on a 10k pull's last round). In
flight and held are bounded apart: at most `PAGES_HELD` answered pages wait beyond those in
flight, at most `READING` answers are received and read at once (a 1000-invoice body is
~2.7 MB; the rest wait in their sockets), and a read page is only its records, a fraction
of that. Memory holds a few pages, never the company. A short page ends its
entity early (records deleted during the pull; pages asked past it are dropped); records
added after the count are read by the next incremental pull, which starts from this pull's
first server time (as for a record added behind a sequential pull's last page).
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Collection, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from connectors.arenas import limit_arenas
from connectors.base import ConnectorError
from connectors.offload import Offload
from connectors.quickbooks.client import QboClient, Reply, batch_answers
from connectors.quickbooks.cursor import ENTITIES, Listing, State
from connectors.quickbooks.listed import Listed, ends, listed
from connectors.quickbooks.normalize import normalize_all
from connectors.quickbooks.options import QboOptions
from connectors.quickbooks.pull import TABLES, _advance, _page, _query_rows, recorded, server_time, statement
from portal_rules.records import Entity, Page

# Requests in flight at once, at most (and never more than the realm's concurrency cap).
PAGES_AHEAD = 10
# Answered pages held beyond those in flight, at most: a read page is ~0.8 MB of records.
PAGES_HELD = 3
# Answers received and read at once, at most: each is ~2.7 MB of JSON until it is records.
READING = 4


class Slots:
    """A semaphore that remembers how many held it at once (diagnostics and tests)."""

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self.held = self.peak = 0

    def __enter__(self) -> Slots:
        self._free.acquire()
        with self._lock:
            self.held += 1
            self.peak = max(self.peak, self.held)
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.held -= 1
        self._free.release()


@dataclass(slots=True)
class _Request:
    """One page's request, counted in the window until the API is done with it."""

    done: bool = False
    planned: bool = True  # an early page's: false until the plan reaches it


class Ahead:
    """One full listing's pages, counted in its first request, then fetched ahead."""

    def __init__(self, client: QboClient, options: QboOptions) -> None:
        self.client, self.size = client, options.page_size
        self.window = max(1, min(options.concurrent, PAGES_AHEAD))
        self.home_currency = options.home_currency
        self.offload_pages, self.read_timeout = options.offload_pages, options.read_timeout
        limit_arenas()  # before the fetching threads allocate
        # a thread per request in flight, and one per answer being read after its request
        self._pool = ThreadPoolExecutor(self.window + READING, thread_name_prefix="qbo-ahead")
        self._offload: Offload | None = None
        self.reading = Slots(READING)
        # The queue of pages asked and the plan of pages to ask are shared with the fetching
        # threads, which ask the next page as theirs is answered; reentrant: a future done at
        # once runs its callback in the thread that adds it.
        self._lock = threading.RLock()
        self._in_flight = 0
        self._closed = False
        # each later entity's first page, asked beside the batch, until the plan reaches it
        self._early: dict[Entity, tuple[Listing, Future[Reply], _Request]] = {}
        # set once the pull knows whether pages are read in the page decoder's process
        self._decided = threading.Event()

    def pages(self, listing: Listing) -> Generator[Page, None, State]:
        """Every page of the full listing from `listing` on, in order; returns the state after."""
        try:
            starts = [listing]
            while starts[-1].entity != ENTITIES[-1]:
                starts.append(starts[-1].next_entity())
            queue: deque[tuple[Listing, Future[Reply] | Reply]] = deque()
            plan: deque[Listing] = deque()
            with self._lock:
                for early in starts[1 : self.window]:  # the batch is one of the window's requests
                    self._ask(early, queue, plan, early=True)
            first, totals, seen = self._open(starts)
            planned = _planned(starts, totals, self.size, asked=self._early)
            if self.offload_pages and len(planned) >= self.offload_pages:
                self._offload = Offload("quickbooks.listing", timeout=self.read_timeout)
                self._offload.start()  # its imports overlap the first requests' wait
            self._decided.set()
            with self._lock:  # an early page's answer tops up from the plan as it is filled
                plan.extend(planned)
                if plan and plan[0] == listing:
                    queue.append((plan.popleft(), first))
            del first, planned
            state: State = listing
            edges = listing.edges  # the page boundaries so far (`shift`)
            for start in starts:
                entity, total, tail = start.entity, totals[start.entity], start.tail
                if not (queue and queue[0][0].entity == entity) and not (plan and plan[0].entity == entity):
                    state = _advance(replace(start, seen=seen, edges=edges), [], True)  # nothing to ask for
                    yield self._page(entity, Listed([], [], 0), state, 0, total)
                    continue
                while True:
                    with self._lock:
                        self._top_up(queue, plan)
                        asked, answer = queue.popleft()
                    reply = answer if isinstance(answer, Reply) else answer.result()
                    read, calls = self._read(reply.body, entity), reply.calls
                    del answer, reply  # the raw answer goes as soon as its records are out
                    last = read.rows < self.size or asked.start - 1 + read.rows >= total
                    asked = recorded(replace(asked, seen=seen, edges=edges, tail=tail), read.first, read.last)
                    edges, tail = asked.edges, asked.tail
                    state = _advance(asked, range(read.rows), last)
                    yield self._page(entity, read, state, calls, total)
                    if last:
                        with self._lock:
                            _drop(queue, plan, entity)  # pages asked past a short page lie past the end
                        break
            return state
        finally:
            with self._lock:
                self._closed = True  # no fetching thread asks for another page
            self._decided.set()  # an early page's reader waits for it
            self._pool.shutdown(wait=True, cancel_futures=True)
            if self._offload is not None:
                self._offload.close()

    def _open(self, starts: list[Listing]) -> tuple[Reply, dict[Entity, int], str]:
        """The first page and every entity's count, in one request; the pull's server time."""
        first = starts[0]
        queries = [statement(first, self.size), *(count_statement(start) for start in starts)]
        reply = self.client.batch(queries)
        answers = batch_answers(reply.body, len(queries))
        totals = {start.entity: _total(answer) for start, answer in zip(starts, answers[1:], strict=True)}
        page = Reply({"QueryResponse": answers[0], "time": reply.body.get("time")}, reply.calls)
        return page, totals, first.seen or server_time(reply.body)

    def _top_up(self, queue: deque[tuple[Listing, Future[Reply] | Reply]], plan: deque[Listing]) -> None:
        """Ask for planned pages while fewer than `window` are in flight and fewer than
        `window + PAGES_HELD` are asked and not yet taken by the pull. Under `_lock`."""
        while plan and not self._closed and len(queue) < self.window + PAGES_HELD:
            asked = plan[0]
            early = self._early.get(asked.entity)
            if early is not None and early[0] == asked:  # asked beside the batch: in flight already
                del self._early[asked.entity]
                early[2].planned = True  # planned now: its failure fails the pull, as any page's
                queue.append((plan.popleft(), early[1]))
                early[1].add_done_callback(self._closes_if_failed)  # (at once, if it has failed)
                continue
            if self._in_flight >= self.window:
                return
            queue.append((plan.popleft(), self._ask(asked, queue, plan)))

    def _ask(
        self,
        asked: Listing,
        queue: deque[tuple[Listing, Future[Reply] | Reply]],
        plan: deque[Listing],
        *,
        early: bool = False,
    ) -> Future[Reply]:
        """Start the request for one page; it counts in the window until the API is done with
        it. A failed request closes the pull, except an early one not yet planned: that fails
        the pull only if the pull gets to its page. Under `_lock`."""
        request = _Request(planned=not early)
        read = self._reader(asked.entity)

        def received(body: bytes, request=request, read=read, queue=queue, plan=plan) -> Listed | None:
            self._done_with(request, queue, plan)  # the next page goes while this one is read
            return read(body)

        future = self._pool.submit(self.client.query, statement(asked, self.size), received, self.reading)
        self._in_flight += 1
        if early:
            self._early[asked.entity] = (asked, future, request)
        future.add_done_callback(functools.partial(self._answered, request=request, queue=queue, plan=plan))
        return future

    def _closes_if_failed(self, done: Future[Reply]) -> None:
        with self._lock:
            if not done.cancelled() and done.exception() is not None:
                self._closed = True

    def _answered(
        self,
        done: Future[Reply],
        *,
        request: _Request,
        queue: deque[tuple[Listing, Future[Reply] | Reply]],
        plan: deque[Listing],
    ) -> None:
        """A request ended: the next planned page may go, unless this one failed (retries are
        the client's; the pull fails at this page, so pages past it would be wasted). An early
        page not yet planned fails nothing yet: the pull fails when it gets to it, if it does."""
        with self._lock:
            if request.planned:  # read under the lock: `_top_up` plans an early page under it
                self._closes_if_failed(done)
            self._done_with(request, queue, plan)

    def _done_with(
        self, request: _Request, queue: deque[tuple[Listing, Future[Reply] | Reply]], plan: deque[Listing]
    ) -> None:
        """The API is done with `request` (its body is in, or it ended): it leaves the window, once."""
        with self._lock:
            if not request.done:
                request.done = True
                self._in_flight -= 1
            self._top_up(queue, plan)

    def _reader(self, entity: Entity) -> Callable[[bytes], Listed | None]:
        """How a fetching thread reads a page's body: in the page decoder's process when the
        pull is large enough to pay for one (and while it lives), else in this one. An early
        page's answer can come before the counts: its reader waits until that is decided."""
        home = self.home_currency

        def read(body: bytes) -> Listed | None:
            self._decided.wait()
            offload = self._offload
            answer = offload.read(body, entity, home) if offload is not None else None
            return Listed(*answer) if answer is not None else listed(body, entity, home)

        return read

    def _read(self, body: dict[str, Any] | Listed, entity: Entity) -> Listed:
        """A page read by its fetching thread, or an envelope (the batch's first page, or an
        answer only the SDK's parser read) read here."""
        if isinstance(body, Listed):
            return body
        rows = _query_rows(body, entity)
        return Listed(*normalize_all(entity, rows, self.home_currency), len(rows), *ends(rows))

    def _page(self, entity: Entity, read: Listed, state: State, calls: int, total: int) -> Page:
        complete = entity == ENTITIES[-1] and not isinstance(state, Listing)
        page = _page(entity, read.records, read.quarantined, state.to_dict(), calls, complete)
        return replace(page, total=total, read=read.rows)


def _planned(
    starts: list[Listing], totals: dict[Entity, int], size: int, asked: Collection[Entity] = ()
) -> list[Listing]:
    """Every page to ask for, in order: from each entity's start while records remain, and
    the first page of the entities `asked` already (counted empty, it is read, not wasted:
    the request is counted, and records added since the count are kept)."""
    return [
        replace(start, start=position)
        for start in starts
        for position in range(start.start, max(totals[start.entity], start.entity in asked) + 1, size)
    ]


def _drop(queue: deque[tuple[Listing, Any]], plan: deque[Listing], entity: Entity) -> None:
    """Forget the pages of `entity` still queued or planned (not yet started ones are cancelled)."""
    while queue and queue[0][0].entity == entity:
        _, answer = queue.popleft()
        if isinstance(answer, Future):
            answer.cancel()
    while plan and plan[0].entity == entity:
        plan.popleft()


def count_statement(listing: Listing) -> str:
    """`SELECT COUNT(*)` over what `statement(listing)` pages through."""
    where = " WHERE Active IN (true,false)" if listing.entity == "customers" else ""
    return f"SELECT COUNT(*) FROM {TABLES[listing.entity]}{where}"


def _total(response: dict[str, Any]) -> int:
    total = response.get("totalCount")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ConnectorError(f"unexpected QuickBooks COUNT answer: {total!r}")
    return total
