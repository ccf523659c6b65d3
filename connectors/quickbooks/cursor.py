"""The QuickBooks cursor: where a pull stands, as a small JSON-able dict.

Every page carries the state that resumes *after* it. Times in a cursor come from
QuickBooks itself (a response's `time` or a record's `MetaData.LastUpdatedTime`), never
from our clock, and keep the offset QuickBooks wrote them with.

    {"v": 2, "mode": "full", "entity": "invoices", "start": 2001, "began": T}
    {"v": 2, "mode": "changed", "entity": "customers", "start": 3, "since": S, "after": A, "began": T}
    {"v": 2, "mode": "second", "entity": "invoices", "start": 1001, "since": X}
    {"v": 2, "mode": "cdc", "since": X}
    {"v": 2, "mode": "done", "since": T}
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from portal_rules.records import Entity

# 2: payments and credit memos follow invoices. A version-1 cursor never pulled them, so it
# is refused and the connector starts one full pull (which also fetches their history).
VERSION = 2
ListingMode = Literal["full", "changed", "second"]
ENTITIES: tuple[Entity, ...] = ("customers", "invoices", "payments", "credits")  # a pull's order


class CursorError(ValueError):
    """A cursor this connector did not write (or a newer version of it wrote)."""


@dataclass(frozen=True)
class Listing:
    """A pull through the query endpoint: each of `ENTITIES` in turn, one page per request.

    - "full": every record, ORDERBY Id, from STARTPOSITION `start`.
    - "changed": `MetaData.LastUpdatedTime >= after` ORDERBY that time, Id; `start - 1`
      records of second `after` were read already. Advancing `after` (a keyset) means a
      record changed meanwhile moves to the end instead of shifting unread pages.
      `since` is where both entities start.
    - "second": `MetaData.LastUpdatedTime = since`: one second holding more changes than
      a CDC response can carry; CDC resumes one second later.
    `began` is the server time of the pull's first response: the next incremental starts there.
    """

    mode: ListingMode
    entity: Entity = "customers"
    start: int = 1
    since: str | None = None
    after: str | None = None
    began: str | None = None

    def next_entity(self) -> Listing:
        following = ENTITIES[ENTITIES.index(self.entity) + 1]
        return replace(self, entity=following, start=1, after=self.since)


@dataclass(frozen=True)
class Cdc:
    """The next CDC request's `changedSince`, exactly (inside a split window)."""

    since: str


@dataclass(frozen=True)
class Done:
    """A finished pull; the next one asks for changes since `since` (minus an overlap)."""

    since: str


State = Listing | Cdc | Done


def dump(state: State) -> dict[str, Any]:
    """The cursor dict of `state` (only the fields that mean something in its mode)."""
    if isinstance(state, Done):
        return {"v": VERSION, "mode": "done", "since": state.since}
    if isinstance(state, Cdc):
        return {"v": VERSION, "mode": "cdc", "since": state.since}
    cursor: dict[str, Any] = {"v": VERSION, "mode": state.mode, "entity": state.entity, "start": state.start}
    for key in ("since", "after", "began"):
        if getattr(state, key) is not None:
            cursor[key] = getattr(state, key)
    return cursor


def load(cursor: dict[str, Any]) -> State:
    """Read a cursor written by `dump`; raise `CursorError` for anything else."""
    if not isinstance(cursor, dict) or cursor.get("v") != VERSION:
        raise CursorError(f"not a version-{VERSION} QuickBooks cursor")
    mode = cursor.get("mode")
    if mode in ("done", "cdc"):
        since = _time(cursor, "since", required=True)
        return Done(since) if mode == "done" else Cdc(since)
    if mode not in ("full", "changed", "second"):
        raise CursorError(f"unknown cursor mode {mode!r}")
    entity, start = cursor.get("entity"), cursor.get("start")
    if entity not in ENTITIES or not isinstance(start, int) or isinstance(start, bool) or start < 1:
        raise CursorError("cursor entity/start out of range")
    listing = Listing(
        mode,
        entity,
        start,
        since=_time(cursor, "since", required=mode != "full"),
        after=_time(cursor, "after", required=mode == "changed"),
        began=_time(cursor, "began", required=False),
    )
    return listing


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
