"""The QuickBooks cursor: where a pull stands, as a small JSON-able dict.

Every page carries the state that resumes *after* it. Times in a cursor come from
QuickBooks itself (a response's `time` or a record's `MetaData.LastUpdatedTime`), never
from our clock, and keep the offset QuickBooks wrote them with.

The same shape as every connector's cursor (`connectors.xero.cursor`): frozen dataclasses
with `to_dict()` and `Cursor.from_dict()`, `start()` to resume, `full` for a pass that
re-reads everything, `done` for a finished one, `seen` for where the next pass starts.
Cursors written before `seen` had that name carry it as "began"; they still load.

    {"v": 3, "mode": "full", "entity": "invoices", "start": 2001, "seen": T}
    {"v": 3, "mode": "changed", "entity": "customers", "start": 3, "since": S, "after": A, "seen": T}
    {"v": 3, "mode": "second", "entity": "invoices", "start": 1001, "since": X}
    {"v": 3, "mode": "cdc", "since": X}
    {"v": 3, "mode": "done", "since": T}

A full listing also keeps its page boundaries ("edges", and "tail": the last Id read of
the entity it is in) until the first CDC after it has said whether a deletion may have
pushed a record off its pages (`connectors.quickbooks.shift`): its "done" carries them,
the CDC windows carry them with the deletions they report ("deleted"), and a "repair"
reads the boundaries a deletion may have moved:

    {"v": 3, "mode": "repair", "since": T, "edges": [[entity, start, before, after, slack]],
     "deleted": [[entity, count, lowest]]}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from connectors.base import CursorError, OutdatedCursor, earlier_version
from portal_rules.records import Entity

# An older version's cursor is refused (`OutdatedCursor`) and the connector starts one full
# pull, which re-reads and rewrites what the older code stored:
# 2: payments and credit memos follow invoices (a version-1 cursor never pulled them);
# 3: a payment's lines linking a JournalEntry are credits (write-offs), not its money, so the
#    payments version-2 code stored with that money are written again.
VERSION = 3
ListingMode = Literal["full", "changed", "second"]
ENTITIES: tuple[Entity, ...] = ("customers", "invoices", "payments", "credits")  # a pull's order


@dataclass(frozen=True, slots=True)
class Edge:
    """A boundary between two pages of a full listing of `entity`."""

    entity: Entity
    start: int  # the later page's STARTPOSITION
    before: str  # the last Id of the earlier page
    after: str | None  # the first Id of the later page (None: it was empty)
    slack: int = 0  # positions added on each side after a window fell short

    def to_json(self) -> list[Any]:
        return [self.entity, self.start, self.before, self.after, self.slack]


@dataclass(frozen=True, slots=True)
class Deleted:
    """Deletions of `entity` CDC reported since a full listing began: how many, lowest Id."""

    entity: Entity
    count: int
    lowest: str

    def to_json(self) -> list[Any]:
        return [self.entity, self.count, self.lowest]


@dataclass(frozen=True)
class Cursor:
    """Where a QuickBooks pull stands: one of `Listing`, `Cdc` or `Done`."""

    @property
    def full(self) -> bool:
        """This pass re-reads everything (a "full" `Listing`)."""
        return False

    @property
    def done(self) -> bool:
        """The pass is finished (`Done`)."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form committed with a page (only the fields its mode uses)."""
        raise NotImplementedError

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> State:
        """The cursor `to_dict` wrote; raise `CursorError` for anything else."""
        if (earlier := earlier_version(raw, VERSION)) is not None:
            raise OutdatedCursor(f"a version-{earlier} QuickBooks cursor (this release writes {VERSION})")
        if not isinstance(raw, dict) or raw.get("v") != VERSION:
            raise CursorError(f"not a version-{VERSION} QuickBooks cursor")
        mode = raw.get("mode")
        if mode in ("done", "cdc", "repair"):
            since, edges = _time(raw, "since", required=True), _edges(raw.get("edges"))
            if mode == "done":
                return Done(since, edges)
            deleted = _deleted(raw.get("deleted"))
            return Cdc(since, edges, deleted) if mode == "cdc" else Repair(since, edges, deleted)
        if mode not in ("full", "changed", "second"):
            raise CursorError(f"unknown cursor mode {mode!r}")
        entity, start = raw.get("entity"), raw.get("start")
        if entity not in ENTITIES or not isinstance(start, int) or isinstance(start, bool) or start < 1:
            raise CursorError("cursor entity/start out of range")
        seen = "seen" if "seen" in raw else "began"  # "began": written before the rename
        return Listing(
            mode,
            entity,
            start,
            since=_time(raw, "since", required=mode != "full"),
            after=_time(raw, "after", required=mode == "changed"),
            seen=_time(raw, seen, required=False),
            edges=_edges(raw.get("edges")),
            tail=_text(raw.get("tail")),
            deleted=_deleted(raw.get("deleted")),
        )


@dataclass(frozen=True)
class Listing(Cursor):
    """A pull through the query endpoint: each of `ENTITIES` in turn, one page per request.

    - "full": every record, ORDERBY Id, from STARTPOSITION `start`.
    - "changed": `MetaData.LastUpdatedTime >= after` ORDERBY that time, Id; `start - 1`
      records of second `after` were read already. Advancing `after` (a keyset) means a
      record changed meanwhile moves to the end instead of shifting unread pages.
      `since` is where both entities start.
    - "second": `MetaData.LastUpdatedTime = since`: one second holding more changes than
      a CDC response can carry; CDC resumes one second later.
    `seen` is the server time of the pull's first response: everything changed before it
    is read by this pull, and the next incremental starts there. A full listing's `edges`
    are its page boundaries so far and `tail` the last Id read of `entity`.
    """

    mode: ListingMode
    entity: Entity = "customers"
    start: int = 1
    since: str | None = None
    after: str | None = None
    seen: str | None = None
    edges: tuple[Edge, ...] = ()
    tail: str | None = None
    deleted: tuple[Deleted, ...] = ()  # a "second" within the first CDC after a full listing

    @property
    def full(self) -> bool:
        return self.mode == "full"

    def next_entity(self) -> Listing:
        following = ENTITIES[ENTITIES.index(self.entity) + 1]
        return replace(self, entity=following, start=1, after=self.since, tail=None)

    def to_dict(self) -> dict[str, Any]:
        cursor: dict[str, Any] = {"v": VERSION, "mode": self.mode, "entity": self.entity, "start": self.start}
        for key in ("since", "after", "seen", "tail"):
            if getattr(self, key) is not None:
                cursor[key] = getattr(self, key)
        return _with_deleted(_with_edges(cursor, self.edges), self.deleted)


@dataclass(frozen=True)
class Cdc(Cursor):
    """The next CDC request's `changedSince`, exactly (inside a split window); the page
    boundaries of the full listing before it, and the deletions reported so far."""

    since: str
    edges: tuple[Edge, ...] = ()
    deleted: tuple[Deleted, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _with_deleted(
            _with_edges({"v": VERSION, "mode": "cdc", "since": self.since}, self.edges), self.deleted
        )


@dataclass(frozen=True)
class Repair(Cursor):
    """Boundaries of a full listing a deletion may have moved, to read again; then `Done(since)`."""

    since: str
    edges: tuple[Edge, ...]
    deleted: tuple[Deleted, ...]

    def to_dict(self) -> dict[str, Any]:
        cursor = _with_edges({"v": VERSION, "mode": "repair", "since": self.since}, self.edges)
        return _with_deleted(cursor, self.deleted)


@dataclass(frozen=True)
class Done(Cursor):
    """A finished pull; the next one asks for changes since `since` (the pull's `seen`, minus
    an overlap). After a full listing, its page boundaries."""

    since: str
    edges: tuple[Edge, ...] = ()

    @property
    def done(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return _with_edges({"v": VERSION, "mode": "done", "since": self.since}, self.edges)


State = Listing | Cdc | Repair | Done


def start(
    raw: dict[str, Any] | None, *, full: bool, unreadable: Callable[[CursorError], None] | None = None
) -> State:
    """The cursor to pull from: a fresh full pass, or where `raw` left off (a finished pull's
    `Done` leads to an incremental one). An unreadable `raw` is reported to `unreadable`
    and a full pass starts over, safely."""
    if full or raw is None:
        return Listing("full")
    try:
        return Cursor.from_dict(raw)
    except CursorError as exc:
        if unreadable is not None:
            unreadable(exc)
        return Listing("full")


def moment(stamp: str) -> datetime:
    """A cursor time as an aware datetime."""
    return datetime.fromisoformat(stamp)


def stamp(moment: datetime) -> str:
    """An aware datetime as a QBO literal, to the second, in the offset it carries."""
    return moment.isoformat(timespec="seconds")


def _time(cursor: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = cursor.get(key)
    if value is None and not required:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise CursorError(f"cursor {key} is not an ISO date-time with offset: {value!r}")
    return stamp(parsed)  # re-written by us: safe to quote in a query


def _with_edges(cursor: dict[str, Any], edges: tuple[Edge, ...]) -> dict[str, Any]:
    return {**cursor, "edges": [edge.to_json() for edge in edges]} if edges else cursor


def _with_deleted(cursor: dict[str, Any], deleted: tuple[Deleted, ...]) -> dict[str, Any]:
    return {**cursor, "deleted": [item.to_json() for item in deleted]} if deleted else cursor


def _edges(raw: Any) -> tuple[Edge, ...]:
    """The page boundaries a cursor holds; `CursorError` for anything else."""
    if raw is None:
        return ()
    try:
        return tuple(_edge(item) for item in raw)
    except (TypeError, ValueError) as exc:
        raise CursorError(f"cursor edges unreadable: {exc}") from None


def _edge(item: Any) -> Edge:
    entity, start, before, after, slack = item
    if not isinstance(start, int) or isinstance(start, bool) or start < 2 or not isinstance(before, str):
        raise ValueError(f"bad edge {item!r}")
    if (after is not None and not isinstance(after, str)) or not isinstance(slack, int) or slack < 0:
        raise ValueError(f"bad edge {item!r}")
    return Edge(_entity(entity), start, before, after, slack)


def _deleted(raw: Any) -> tuple[Deleted, ...]:
    if raw is None:
        return ()
    try:
        return tuple(Deleted(_entity(entity), int(count), str(lowest)) for entity, count, lowest in raw)
    except (TypeError, ValueError) as exc:
        raise CursorError(f"cursor deletions unreadable: {exc}") from None


def _entity(value: Any) -> Entity:
    if value not in ENTITIES:
        raise ValueError(f"unknown entity {value!r}")
    return value


def _text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise CursorError(f"cursor tail is not an Id: {value!r}")
    return value
