"""Paging a QuickBooks pull: full listings, CDC windows and LastUpdatedTime listings.

A pull is a small state machine over `cursor.State`: each step makes one request, yields
its page(s) carrying the state that resumes after them, and returns the next state.

- Full: `SELECT * FROM Customer WHERE Active IN (true,false)`, then `Invoice`, `Payment`
  and `CreditMemo`, ORDERBY Id, pages of 1000 until a short page: n records cost
  floor(n/1000) + 1 requests, the minimum without knowing n (a COUNT(*) first would cost one
  more whenever n is not a multiple of 1000). The last credit memos page says
  `full_sync_complete`.
- Incremental, cursor within 30 days: CDC `changedSince` = cursor - overlap. CDC answers the
  oldest changes first, at most 1000; a full answer continues at its newest
  LastUpdatedTime (inclusive: the boundary second is re-read, never skipped). Deletions
  only ever arrive this way.
- Incremental, older cursor: `MetaData.LastUpdatedTime >= cursor - overlap` listings.
- After a full listing, the first CDC learns whether a deletion during it may have pushed a
  record off its pages; if so a "repair" reads those page boundaries again (`shift`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import ConnectorError
from connectors.quickbooks import shift
from connectors.quickbooks.client import QboClient, batch_answers
from connectors.quickbooks.cursor import (
    ENTITIES,
    Cdc,
    Deleted,
    Done,
    Edge,
    Listing,
    Repair,
    State,
    moment,
    stamp,
)
from connectors.quickbooks.listed import ends, row_id
from connectors.quickbooks.normalize import TABLES, normalize_all
from connectors.quickbooks.options import QboOptions
from portal_rules.records import Entity, Page, Quarantined

log = structlog.get_logger("arsync.connectors.quickbooks")

CDC_ENTITIES = ",".join(TABLES.values())  # one request for the changes of every entity
ONE_SECOND = timedelta(seconds=1)
LISTING_OVERLAP = 50  # rows a "second" or "changed" page re-reads of the one before (`_overlapping`)
_EPOCH = datetime.fromtimestamp(0, UTC)
Step = Generator[Page, None, State]


def statement(listing: Listing, page_size: int) -> str:
    """The SELECT for one page of `listing`."""
    table = TABLES[listing.entity]
    # A plain SELECT returns active customers only: inactivity must be seen.
    where = ["Active IN (true,false)"] if table == "Customer" else []
    order = "Id"
    if listing.mode == "changed":
        where.append(f"MetaData.LastUpdatedTime >= '{listing.after}'")
        order = "MetaData.LastUpdatedTime, Id"
    elif listing.mode == "second":
        where.append(f"MetaData.LastUpdatedTime = '{listing.since}'")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    paging = f"STARTPOSITION {listing.start} MAXRESULTS {page_size}"
    return f"SELECT * FROM {table}{clause} ORDERBY {order} {paging}"


@dataclass(frozen=True)
class Puller:
    client: QboClient
    options: QboOptions
    now: Callable[[], datetime]  # only to choose CDC or queries; never stored in a cursor

    def pages(self, state: State) -> Iterator[Page]:
        """Every page from `state` until the pull is done."""
        if isinstance(state, Done):
            state = self.incremental(state)
        while not isinstance(state, Done):
            if isinstance(state, Cdc) and not self._within_cdc(moment(state.since)):
                # a CDC window an interrupted run left (or the one after a second read by
                # query), resumed after CDC's days: QuickBooks would refuse it at every run
                # (ValidationFault 2010), so the queries take over
                state = self._older_than_cdc(moment(state.since), state.edges)
            if isinstance(state, Cdc):
                state = yield from self.cdc_window(state)
            elif isinstance(state, Repair):
                state = yield from self.repair(state)
            else:
                state = yield from self.listing_page(state)

    def incremental(self, done: Done) -> State:
        """CDC from the cursor minus the overlap, or LastUpdatedTime queries when too old for CDC."""
        origin = self._origin(done)
        if self._within_cdc(origin):
            return Cdc(stamp(origin), done.edges)
        return self._older_than_cdc(origin, done.edges)

    def starts_over(self, state: State) -> bool:
        """Whether a pull from `state` reads every record again by itself (`_older_than_cdc`):
        a full listing's boundaries no CDC can check any more. Such a pull must be a full one
        for the store too, which then reconciles what it no longer returns: deletions older
        than CDC's days are reported nowhere else."""
        if isinstance(state, Done):
            origin = self._origin(state)
        elif isinstance(state, Cdc) or (isinstance(state, Listing) and state.mode == "second"):
            origin = moment(state.since)  # a second read by query goes on by CDC from there
        else:
            return False
        return bool(state.edges) and not self._within_cdc(origin)

    def _origin(self, done: Done) -> datetime:
        return moment(done.since) - timedelta(seconds=self.options.overlap_seconds)

    def _within_cdc(self, origin: datetime) -> bool:
        oldest = self.now() - timedelta(days=self.options.cdc_max_days)
        return origin >= oldest + timedelta(seconds=self.options.cdc_margin_seconds)

    def _older_than_cdc(self, origin: datetime, edges: tuple[Edge, ...]) -> State:
        if edges:  # no CDC to say whether a deletion pushed a record off those pages
            log.warning(
                "quickbooks.cursor_older_than_cdc",
                since=stamp(origin),
                note="the last full pull's pages cannot be checked: every record is read again",
            )
            return Listing("full")
        log.warning(
            "quickbooks.cursor_older_than_cdc",
            since=stamp(origin),
            note="changed records are re-read by LastUpdatedTime; deletions since then need a full sync",
        )
        return Listing("changed", since=stamp(origin), after=stamp(origin))

    def listing_page(self, listing: Listing) -> Step:
        asked = _overlapping(listing, self.options.page_size)
        reply = self.client.query(statement(asked, self.options.page_size))
        rows = _query_rows(reply.body, listing.entity)
        seen = None if listing.mode == "second" else listing.seen or server_time(reply.body)
        new = rows
        if asked is not listing:
            new = _after_tail(rows, listing.tail)
            if new is None:  # more records left the listing than the overlap covers
                log.warning(
                    "quickbooks.listing_shifted",
                    mode=listing.mode,
                    entity=listing.entity,
                    start=listing.start,
                )
                again = replace(listing, start=1, tail=None, seen=seen)
                yield _page(listing.entity, (), (), again.to_dict(), reply.calls)
                return again
        last = len(rows) < self.options.page_size
        if listing.mode == "full":
            listing = recorded(listing, *ends(rows))
            following = _advance(replace(listing, seen=seen), rows, last)
        else:
            tail = row_id(rows[-1]) if rows else listing.tail
            following = _advance(replace(asked, seen=seen, tail=tail), rows, last)
        records, quarantined = normalize_all(listing.entity, new, self.options.home_currency)
        complete = listing.mode == "full" and listing.entity == ENTITIES[-1] and last
        page = _page(listing.entity, records, quarantined, following.to_dict(), reply.calls, complete)
        if listing.mode == "changed":  # LastUpdatedTime shows no deletion: they stay unknown
            page = replace(page, deletions_unseen_since=listing.since)
        yield page
        return following

    def cdc_window(self, window: Cdc) -> Step:
        reply = self.client.cdc(CDC_ENTITIES, window.since)
        rows = _cdc_rows(reply.body)
        following = self._after_window(window, rows, reply.body)
        if window.edges:  # the first CDC after a full listing: what its deletions may have moved
            following = _guarded(following, window.edges, shift.deletions(rows, window.deleted))
        yield from self._by_entity(rows, window, following, reply.calls)
        return following

    def _after_window(self, window: Cdc, by_entity: dict[str, list[Any]], body: dict[str, Any]) -> State:
        """Where the pull goes on after a CDC answer. Intuit documents "a maximum of 1,000
        objects" per response; an answer that full goes on from its newest change. Should the
        cap hold per entity instead, an entity answered that full may have been cut sooner
        than the others: the pull then goes on from the oldest of those entities' newest
        changes (re-reading the others' later ones), so no entity's changes are skipped."""
        cap = self.options.cdc_max_objects
        rows = [row for part in by_entity.values() for row in part]
        if len(rows) < cap and all(len(part) < cap for part in by_entity.values()):
            return Done(server_time(body))
        cut = [part for part in by_entity.values() if len(part) >= cap]
        if cut and len(rows) > cap:  # more than one response's worth: a cap per entity
            rows = min(cut, key=lambda part: max((t for t in map(_row_time, part) if t), default=_EPOCH))
        times = [t for t in map(_row_time, rows) if t is not None]
        latest, since = max(times, default=None), moment(window.since)
        if latest is not None and latest > since and any(t != latest for t in times):
            return Cdc(stamp(latest))  # everything older than `latest` was in this answer
        # A full answer within one second: CDC cannot get past it. Read that second by
        # query (deletions beyond the cap in that second are lost until a full sync).
        second = latest if latest is not None and latest > since else since
        log.warning("quickbooks.cdc_second_overflow", second=stamp(second), objects=len(rows))
        return Listing("second", since=stamp(second))

    def repair(self, state: Repair) -> Step:
        """Read again, in one /batch request, up to 30 page boundaries a deletion may have moved."""
        moved = {edge: shift.reach(edge, state.deleted) for edge in state.edges[: shift.WINDOWS_PER_REQUEST]}
        if not all(shift.fits(edge, reach) for edge, reach in moved.items()):
            deleted = [item.to_json() for item in state.deleted]
            log.warning("quickbooks.shift_repair_by_full_listing", deleted=deleted)
            return Listing("full")
        reply = self.client.batch([_window_statement(edge, reach) for edge, reach in moved.items()])
        answers = batch_answers(reply.body, len(moved))
        found: dict[Entity, list[Any]] = {entity: [] for entity in ENTITIES}
        again: list[Edge] = []
        for (edge, reach), answer in zip(moved.items(), answers, strict=True):
            rows = answer.get(TABLES[edge.entity], [])
            skipped = shift.between(rows if isinstance(rows, list) else [], edge, reach)
            if skipped is None:
                again.append(shift.wider(edge, reach))
            else:
                found[edge.entity] += skipped
        log.info("quickbooks.shift_repaired", boundaries=len(moved), records=sum(map(len, found.values())))
        rest = (*state.edges[shift.WINDOWS_PER_REQUEST :], *again)
        following: State = replace(state, edges=rest) if rest else Done(state.since)
        yield from self._by_entity(found, state, following, reply.calls)
        return following

    def _by_entity(
        self, rows: dict[Entity, list[Any]], state: State, following: State, calls: int
    ) -> Iterator[Page]:
        """One page per entity with rows (at least one page); resuming after any but the last
        redoes `state`: the rest is not stored yet."""
        home = self.options.home_currency
        parts = [(entity, *normalize_all(entity, rows[entity], home)) for entity in ENTITIES if rows[entity]]
        for number, (entity, records, quarantined) in enumerate(parts or [("invoices", [], [])], start=1):
            cursor = following.to_dict() if number >= len(parts) else state.to_dict()
            yield _page(entity, records, quarantined, cursor, calls)
            calls = 0


def _overlapping(listing: Listing, page_size: int) -> Listing:
    """A "second" or "changed" listing's next page asked from a few rows earlier.

    Both page by position within rows that can leave them (a record of second S edited
    again moves past it), never enter them before the current position: every later row then
    moves up, and the row at the next STARTPOSITION was on neither page. Asked from
    `LISTING_OVERLAP` rows back, the page still holds the last row read (`tail`) unless more
    than that many left; the rows after it are the new ones (`_after_tail`)."""
    if listing.mode == "full" or listing.tail is None or listing.start <= 1:
        return listing
    back = min(listing_overlap(page_size), listing.start - 1)
    return replace(listing, start=listing.start - back) if back > 0 else listing


def listing_overlap(page_size: int) -> int:
    """Rows of the page before that a "second" or "changed" page asks again: 50 of 1000."""
    return max(1, min(LISTING_OVERLAP, page_size // 20))


def _after_tail(rows: Sequence[Any], tail: str | None) -> Sequence[Any] | None:
    """The rows after the one with Id `tail`; None when it is not among them (the listing
    moved further than the overlap: read from its start again)."""
    for index, row in enumerate(rows):
        if row_id(row) == tail:
            return rows[index + 1 :]
    return None


def recorded(listing: Listing, first: str | None, last: str | None) -> Listing:
    """`listing` (of a full pull) with the boundary in front of its page, read from `first` to
    `last`, kept: `edges` gains it and `tail` becomes `last`."""
    edge = shift.edge_before(listing.entity, listing.start, listing.tail, first)
    edges = (*listing.edges, edge) if edge is not None else listing.edges
    return replace(listing, edges=edges, tail=last if last is not None else listing.tail)


def _window_statement(edge: Edge, moved: int) -> str:
    """The full listing's own query, over the positions `edge`'s two Ids can be at now."""
    first, size = shift.window(edge, moved)
    return statement(Listing("full", edge.entity, first), size)


def _guarded(following: State, edges: tuple[Edge, ...], deleted: tuple[Deleted, ...]) -> State:
    """The state after a CDC window of the first CDC after a full listing: the boundaries and
    deletions go on to the next window (or the second read by query before it); at the end, a
    repair of those a deletion may have moved, or `Done` without them."""
    if isinstance(following, Done):
        risky = shift.at_risk(edges, deleted)
        return Repair(following.since, risky, deleted) if risky else following
    return replace(following, edges=edges, deleted=deleted)


def _advance(listing: Listing, rows: Sequence[Any], last: bool) -> State:
    """The state after a page of `listing` holding `rows`."""
    if not last and listing.mode == "changed":
        after, start = _keyset(listing, rows)
        return replace(listing, after=after, start=start)
    if not last:
        return replace(listing, start=listing.start + len(rows))
    if listing.entity != ENTITIES[-1]:
        return listing.next_entity()
    if listing.mode == "second" and listing.since is not None:
        return Cdc(stamp(moment(listing.since) + ONE_SECOND), listing.edges, listing.deleted)
    if listing.seen is None:  # set from the first response before any page is advanced
        raise ConnectorError("QuickBooks pull finished without a server time")
    return Done(listing.seen, listing.edges)


def _keyset(listing: Listing, rows: Sequence[Any]) -> tuple[str | None, int]:
    """Next (`after`, `start`): the page's newest second, skipping what was read of it."""
    times = [_row_time(row) for row in rows]
    newest = max((t for t in times if t is not None), default=None)
    if newest is None:
        return listing.after, listing.start + len(rows)
    read = sum(1 for t in times if t == newest)
    if listing.after is not None and newest == moment(listing.after):
        read += listing.start - 1
    return stamp(newest), read + 1


def _row_time(raw: Any) -> datetime | None:
    """A row's LastUpdatedTime in the offset QuickBooks wrote (None when unreadable)."""
    meta = raw.get("MetaData") if isinstance(raw, dict) else None
    value = meta.get("LastUpdatedTime") if isinstance(meta, dict) else None
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def server_time(body: dict[str, Any]) -> str:
    """The response envelope's `time` (in QuickBooks' own offset): where the next pull may start."""
    value = body.get("time")
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConnectorError(f"QuickBooks answered without a usable 'time': {value!r}")
    return stamp(when)


def _query_rows(body: dict[str, Any], entity: Entity) -> list[Any]:
    response = body.get("QueryResponse")
    rows = response.get(TABLES[entity], []) if isinstance(response, dict) else None
    if not isinstance(rows, list):
        raise ConnectorError(f"unexpected QuickBooks query answer for {TABLES[entity]}")
    return rows


def _cdc_rows(body: dict[str, Any]) -> dict[Entity, list[Any]]:
    """Each entity's rows of a CDC answer: CDCResponse[0].QueryResponse[*].{Customer,Invoice,...}."""
    try:
        parts = body["CDCResponse"][0]["QueryResponse"]
        found: dict[Entity, list[Any]] = {entity: [] for entity in ENTITIES}
        for part in parts:
            for entity, rows in found.items():
                rows.extend(part.get(TABLES[entity], []))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ConnectorError(f"unexpected QuickBooks CDC answer ({type(exc).__name__})") from None
    return found


def _page(
    entity: Entity,
    records: Sequence[Any],
    quarantined: Sequence[Quarantined],
    cursor: dict[str, Any],
    calls: int,
    complete: bool = False,
) -> Page:
    return Page(
        entity,
        tuple(records),
        quarantined=tuple(quarantined),
        cursor=cursor,
        api_calls=calls,
        full_sync_complete=complete,
    )
