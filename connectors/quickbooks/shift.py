"""Records a deletion made during a full listing pushes off its pages, found and read again.

A full listing pages by STARTPOSITION over `ORDERBY Id`. A record deleted after its page
was read moves every later record one position back: the record at the next page boundary
then lies on neither page. It did not change, so CDC never reports it, and it would stay
out of the store. Inserts cannot do this (QuickBooks gives a new record the highest Id:
it lands at the end).

So a full listing keeps its page boundaries (`Edge`: where the later page started, the
last Id before and the first Id after). The first incremental pull after it reads CDC from
the listing's start, which reports every deletion since (`Deleted`: how many per entity,
and the lowest Id). A boundary at or after a deleted Id may have lost records: a window
of positions around it is read again, wide enough for every deletion to have moved the
boundary (STARTPOSITION start - 1 - deletions), and whatever lies strictly between the two
Ids is what the listing skipped. Up to 30 windows go in one /batch request; without a
deletion (the usual case) the boundaries cost nothing and are dropped.

A window that does not reach both Ids (more deletions since CDC answered) is asked again,
wider. Deletions too many for windows of 1000 rows fall back to a full listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from connectors.quickbooks.cursor import ENTITIES, Deleted, Edge
from connectors.quickbooks.signals import quickbooks_deleted
from portal_rules.records import Entity

WINDOWS_PER_REQUEST = 30  # QuickBooks: operations per /batch request
MAX_WINDOW = 1000  # MAXRESULTS


def id_order(ref: str) -> tuple[int, int | str]:
    """An Id's place in `ORDERBY Id`: numeric Ids by value (QuickBooks' are numeric strings)."""
    return (0, int(ref)) if ref.isdigit() else (1, ref)


def edge_before(entity: Entity, start: int, tail: str | None, first: str | None) -> Edge | None:
    """The boundary in front of a page read at `start` after a page ending at `tail`."""
    return Edge(entity, start, tail, first) if start > 1 and tail is not None else None


def deletions(rows: dict[Entity, list[Any]], known: Sequence[Deleted] = ()) -> tuple[Deleted, ...]:
    """`known` with the deletions among a CDC answer's `rows` added."""
    tally = {item.entity: item for item in known}
    for entity, part in rows.items():
        gone = [str(row["Id"]) for row in part if _deleted_row(row)]
        if not gone:
            continue
        count, lowest = len(gone), min(gone, key=id_order)
        earlier = tally.get(entity)
        if earlier is not None:  # CDC windows overlap: a deletion may count twice (a wider window)
            count, lowest = count + earlier.count, min(lowest, earlier.lowest, key=id_order)
        tally[entity] = Deleted(entity, count, lowest)
    return tuple(tally[entity] for entity in ENTITIES if entity in tally)


def at_risk(edges: Iterable[Edge], deleted: Sequence[Deleted]) -> tuple[Edge, ...]:
    """The boundaries a deletion may have moved: at or after a deleted Id of their entity."""
    lowest = {item.entity: id_order(item.lowest) for item in deleted}
    return tuple(
        edge
        for edge in edges
        if edge.entity in lowest and (edge.after is None or lowest[edge.entity] < id_order(edge.after))
    )


def reach(edge: Edge, deleted: Sequence[Deleted]) -> int:
    """How far the records around `edge` may have moved back: its entity's deletions."""
    count = next((item.count for item in deleted if item.entity == edge.entity), 0)
    return count + edge.slack


def window(edge: Edge, moved: int) -> tuple[int, int]:
    """(STARTPOSITION, MAXRESULTS) of the positions `edge`'s two Ids can be at now."""
    first = max(1, edge.start - 1 - moved)
    return first, edge.start + 1 + edge.slack - first + 1


def fits(edge: Edge, moved: int) -> bool:
    """Whether `edge`'s window is within one query's MAXRESULTS."""
    return window(edge, moved)[1] <= MAX_WINDOW


def between(rows: Sequence[Any], edge: Edge, moved: int) -> list[Any] | None:
    """The rows of `edge`'s window strictly between its two Ids; None when the window does
    not reach both (records moved further than counted: ask again, wider)."""
    first, size = window(edge, moved)
    keys = [id_order(str(row.get("Id"))) if isinstance(row, dict) else (2, "") for row in rows]
    low, high = id_order(edge.before), id_order(edge.after) if edge.after is not None else None
    reaches_low = first == 1 or any(key <= low for key in keys)
    reaches_high = len(rows) < size or (high is not None and any(key >= high for key in keys))
    if not (reaches_low and reaches_high):
        return None
    return [row for row, key in zip(rows, keys, strict=True) if low < key and (high is None or key < high)]


def wider(edge: Edge, moved: int) -> Edge:
    """`edge` with a window four times as far-reaching as one of `moved` (it fell short)."""
    return replace(edge, slack=edge.slack + 3 * moved + 4)


def _deleted_row(row: Any) -> bool:
    return isinstance(row, dict) and row.get("Id") is not None and quickbooks_deleted(row.get("status"))
