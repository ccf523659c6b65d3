"""A scripted page source: yields prepared pages with cursors, like a connector would.

Not a mock: it asserts nothing about how it is called. It lets orchestrator tests control
exactly which records arrive, and stop "the process" between two pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from portal_rules.records import CustomerRecord, InvoiceRecord, Page, Quarantined


class Killed(BaseException):
    """Stands for SIGKILL between two pages (BaseException: nothing may swallow it)."""


@dataclass
class ScriptedSource:
    customers: list[CustomerRecord] = field(default_factory=list)
    invoices: list[InvoiceRecord] = field(default_factory=list)
    changes: list[CustomerRecord | InvoiceRecord] = field(default_factory=list)  # next incremental
    unreadable: list[Quarantined] = field(default_factory=list)  # changed too, quarantined by the connector
    page_size: int = 2
    kill_after_pages: int | None = None
    kind: str = "scripted"

    def pages(self, cursor: dict | None, *, full: bool = False) -> Iterator[Page]:
        if cursor is None or full or cursor.get("phase") != "done":
            yield from self._full(cursor if not full else None)
        else:
            yield from self._incremental()

    def _full(self, cursor: dict | None) -> Iterator[Page]:
        position = (cursor or {}).get("position", 0)
        items = [("customers", c) for c in self.customers] + [("invoices", i) for i in self.invoices]
        emitted = 0
        while position < len(items):
            entity = items[position][0]
            chunk = [r for e, r in items[position : position + self.page_size] if e == entity]
            position += len(chunk)
            last = position >= len(items)
            cursor = {"phase": "done" if last else "full", "position": position}
            if entity == "customers":
                yield Page("customers", tuple(chunk), cursor=cursor, api_calls=1, full_sync_complete=last)
            else:
                yield Page("invoices", tuple(chunk), cursor=cursor, api_calls=1, full_sync_complete=last)
            emitted += 1
            if self.kill_after_pages is not None and emitted >= self.kill_after_pages:
                raise Killed()

    def _incremental(self) -> Iterator[Page]:
        customers = tuple(r for r in self.changes if isinstance(r, CustomerRecord))
        invoices = tuple(r for r in self.changes if isinstance(r, InvoiceRecord))
        done = {"phase": "done", "position": 0}
        unreadable = {
            entity: tuple(q for q in self.unreadable if q.entity == entity)
            for entity in ("customers", "invoices")
        }
        yield Page("customers", customers, cursor=done, api_calls=1, quarantined=unreadable["customers"])
        yield Page("invoices", invoices, cursor=done, api_calls=1, quarantined=unreadable["invoices"])
