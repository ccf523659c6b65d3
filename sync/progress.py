"""`arsync sync` on a terminal: a live display per company and entity, logs printed above it.

Per company: pages, API calls and elapsed time; per entity (customers, invoices, and any
other count the sync summary carries): records so far, "of total" when the connector's
pages say how many the pull holds (`Page.total`: Xero's itemCount, QuickBooks' counts of a
full pull), and records per second. Without a total the count stands alone: no bar
pretends to know the end.

While the display runs, the root logger's handlers that wrote to the terminal write
through rich's console instead, which prints each log line above the live lines: a log
line never lands inside the progress line. Without a terminal this module is not used.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

if TYPE_CHECKING:
    from portal_rules.records import Page

# The counts of a sync summary shown as entities, in the order they are pulled.
ENTITIES = ("customers", "invoices", "payments", "credits")


class RateColumn(ProgressColumn):
    """Records per second: recent pages' rate, else the average (blank on a company's line)."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("entity"):
            return Text("")
        rate = task.speed
        if rate is None and task.elapsed and task.elapsed >= 0.5:
            rate = task.completed / task.elapsed
        return Text(f"{rate:>9,.0f} rec/s" if rate is not None else "", style="progress.data.speed")


class SyncProgress(AbstractContextManager):
    """The live display of one `arsync sync` run; `on_page` is the orchestrator's callback."""

    def __init__(self, stream: IO[str]) -> None:
        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("{task.description}"),
            TextColumn("{task.fields[count]}", justify="right"),
            RateColumn(),
            TimeElapsedColumn(),
            console=self.console,
            redirect_stdout=False,  # stdout may be a pipe while stderr is the terminal
            redirect_stderr=True,
            refresh_per_second=4,
        )
        self._companies: dict[str, TaskID] = {}
        self._entities: dict[tuple[str, str], TaskID] = {}
        self._stopped: set[TaskID] = set()
        self._totals: dict[tuple[str, str], int] = {}
        self._read: dict[tuple[str, str], int] = {}  # the API's items the pages held, `Page.read`
        self._swapped: list[tuple[logging.StreamHandler, Any]] = []
        self._stream = stream

    def __enter__(self) -> SyncProgress:
        self.progress.start()
        proxy = FileProxy(self.console, self._stream)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self._stream:
                self._swapped.append((handler, handler.setStream(proxy)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handler, stream in self._swapped:
            handler.flush()
            handler.setStream(stream)
        self._swapped.clear()
        self.progress.stop()

    def start(self, company_id: str) -> None:
        """A company's sync begins: its line appears, its clock starts."""
        self._companies[company_id] = self.progress.add_task(
            company_id, total=None, count="connecting", entity=False
        )

    def on_page(self, summary: Any, page: Page | None = None) -> None:
        """After each committed page: update the company's and its entities' lines (with the
        page's entity total when `page` is given and knows it)."""
        company = summary.company
        if page is not None and page.total is not None:
            self._totals[(company, page.entity)] = page.total
        if page is not None and page.read is not None:
            self._read[(company, page.entity)] = self._read.get((company, page.entity), 0) + page.read
        self.progress.update(
            self._companies[company], count=f"{summary.pages} pages, {summary.api_calls} API calls"
        )
        for entity in ENTITIES:
            key = (company, entity)
            count, read = getattr(summary, entity, None) or 0, self._read.get(key)
            if not count and not read:
                continue
            if key not in self._entities:
                self._stop_entities(company)  # pulls are sequential: the previous one is done
                self._entities[key] = self.progress.add_task(f"  {entity}", total=None, count="", entity=True)
            self.progress.update(
                self._entities[key], completed=count, count=_shown(count, read, self._totals.get(key))
            )

    def finish(self, summary: Any) -> None:
        """The company's sync ended: freeze its lines and show how it ended."""
        task = self._companies.get(summary.company)
        if task is None:
            return
        self.on_page(summary)
        self.progress.update(task, description=f"{summary.company} {summary.status}")
        self._stop_entities(summary.company)
        self.progress.stop_task(task)

    def _stop_entities(self, company_id: str) -> None:
        for (company, _), task in self._entities.items():
            if company == company_id and task not in self._stopped:
                self.progress.stop_task(task)
                self._stopped.add(task)

    def echo(self, line: str) -> None:
        """A result line for the terminal, printed above the live display."""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def _shown(stored: int, read: int | None, total: int | None) -> str:
    """An entity's count: stored so far, or read of the pull's total and how many were stored
    when they differ (Xero's listing counts its bills and deleted invoices too: "3,284 /
    3,362" read as records lost)."""
    if total is None:
        return f"{stored:,}"
    if read is None or read == stored:
        return f"{stored:,} / {total:,}"
    return f"{read:,} / {total:,} read, {stored:,} stored"
