"""The Xero cursor: where a pull stands, the per-entity watermarks, and which contacts are
held back as suppliers. A frozen value, stored as a JSON-able dict.

The same shape as every connector's cursor (`connectors.quickbooks.cursor`): a frozen
dataclass with `to_dict()` and `Cursor.from_dict()`, `start()` to resume, `full` for a pass
that re-reads everything, `done` for a finished one, `seen` for where the next pass starts.

A pass reads contacts, sales invoices, customer payments and customer credit notes, page by
page in id order, with one fixed If-Modified-Since per entity (`since`). `seen` is, per
entity, the earliest `DateTimeUTC` of the pass's answers: Xero's clock when it began
reading that listing (never the local clock; pages fetched ahead are answered in any
order). A record changed after its page was read was changed after that moment, so when a
pass is done `seen` becomes the next pass's `since`, and that pass reads the change. (The
newest `UpdatedDateUTC` read is no watermark: a record changed mid-pass is newer than
records on pages not read yet.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from connectors.base import CursorError, OutdatedCursor, earlier_version
from portal_rules.records import Entity

# 2: payments and credit notes follow invoices. A version-1 cursor never pulled them, so it
# is not read back and the next pass is a full one (which also fetches their history).
# 3: listings are paged in id order and `seen` is Xero's clock. A finished version-2 pass
# still leads to an incremental one from its marks; an unfinished one's page counted
# positions in UpdatedDateUTC order, so its pass starts over (same `full` and `since`).
VERSION = 3
_RESTARTED = 2  # the version whose unfinished passes start over
Phase = Literal["customers", "invoices", "payments", "credits", "done"]
_PHASES: tuple[Phase, ...] = ("customers", "invoices", "payments", "credits", "done")
_ENTITIES: tuple[Entity, ...] = ("customers", "invoices", "payments", "credits")
# If-Modified-Since is compared per second, and `seen` is Xero's clock when it answered, which
# may be some seconds after it read the page (a page of 1000 invoices takes a while): the
# next pass re-reads a minute's edge (upserts are idempotent; a minute's changes are few).
OVERLAP = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Marks:
    """One timestamp per entity (aware UTC), or None when nothing was seen yet."""

    customers: datetime | None = None
    invoices: datetime | None = None
    payments: datetime | None = None
    credits: datetime | None = None

    def get(self, entity: Entity) -> datetime | None:
        return getattr(self, entity)

    def earliest(self, entity: Entity, moment: datetime) -> Marks:
        """These marks with `entity` at `moment` if it is the first or earlier (never later)."""
        current = self.get(entity)
        if current is not None and current <= moment:
            return self
        return replace(self, **{entity: moment})


@dataclass(frozen=True, slots=True)
class Cursor:
    full: bool  # this pass re-reads everything; its last page completes a full sync
    phase: Phase = "customers"
    page: int = 1  # the next page of `phase` to fetch
    since: Marks = field(default_factory=Marks)  # If-Modified-Since of this pass
    seen: Marks = field(default_factory=Marks)  # earliest DateTimeUTC of this pass's answers
    held: frozenset[str] = frozenset()  # contacts not imported: not IsCustomer, no sales invoice yet
    promoted: frozenset[str] = frozenset()  # not IsCustomer but imported for their sales invoices

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def if_modified_since(self, entity: Entity) -> datetime | None:
        """The header value for `entity`: naive UTC, whole seconds, one second of overlap."""
        mark = self.since.get(entity)
        if mark is None:
            return None
        return (mark - OVERLAP).astimezone(UTC).replace(tzinfo=None, microsecond=0)

    def after_page(self, last: bool) -> Cursor:
        """The position after a page of the current phase (`last`: it ended the phase)."""
        if not last:
            return replace(self, page=self.page + 1)
        return replace(self, phase=_PHASES[_PHASES.index(self.phase) + 1], page=1)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form committed with each page."""
        return {
            "v": VERSION,
            "full": self.full,
            "phase": self.phase,
            "page": self.page,
            "since": _marks_to_dict(self.since),
            "seen": _marks_to_dict(self.seen),
            "held": sorted(self.held),
            "promoted": sorted(self.promoted),
        }

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> Cursor:
        """The cursor `to_dict` wrote, or one of version 2 (an unfinished pass starts over);
        raise `CursorError` for anything else."""
        if (earlier := earlier_version(raw, _RESTARTED)) is not None:
            raise OutdatedCursor(f"a version-{earlier} Xero cursor (this release writes {VERSION})")
        try:
            if raw.get("v") not in (VERSION, _RESTARTED) or raw["phase"] not in _PHASES:
                raise CursorError(f"not a version-{VERSION} Xero cursor")
            cursor = Cursor(
                full=bool(raw["full"]),
                phase=raw["phase"],
                page=max(1, int(raw["page"])),
                since=_marks_from_dict(raw["since"]),
                seen=_marks_from_dict(raw["seen"]),
                held=frozenset(map(str, raw.get("held", ()))),
                promoted=frozenset(map(str, raw.get("promoted", ()))),
            )
        except CursorError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CursorError(f"unreadable Xero cursor: {type(exc).__name__}: {exc}") from None
        if raw["v"] == _RESTARTED and not cursor.done:
            return replace(cursor, phase="customers", page=1, seen=Marks())
        return cursor


def start(
    raw: dict[str, Any] | None, *, full: bool, unreadable: Callable[[CursorError], None] | None = None
) -> Cursor:
    """The cursor to pull from: a fresh full pass, the rest of an unfinished pass, or an
    incremental pass after a finished one. An unreadable `raw` (or one of another version)
    is reported to `unreadable` and a full pass starts over, safely."""
    if full or raw is None:
        return Cursor(full=True)
    try:
        cursor = Cursor.from_dict(raw)
    except CursorError as exc:
        if unreadable is not None:
            unreadable(exc)
        return Cursor(full=True)
    if not cursor.done:
        return cursor
    return replace(cursor, full=False, phase="customers", page=1, since=cursor.seen, seen=Marks())


def _marks_to_dict(marks: Marks) -> dict[str, str | None]:
    return {entity: mark.isoformat() if (mark := marks.get(entity)) else None for entity in _ENTITIES}


def _marks_from_dict(raw: dict) -> Marks:
    def parse(value: str | None) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    return Marks(**{entity: parse(raw.get(entity)) for entity in _ENTITIES})
