"""A company's API budget shared by every process on one PostgreSQL store.

The same contract as `connectors.ratelimit.RateLimiter` (`slot()` and `remaining_hint`),
so a connector is handed either without knowing which. State is one `pacing` row per
company, read and written under `SELECT ... FOR UPDATE`: the send times of the last
window, the provider's remaining count (`Counts`: whichever process heard it, every
process waits out a spent window) and the requests in flight, each named after its
process ("host:pid:tag", as lease owners are) and with an expiry: the slot of a process of
this host that has exited comes back at once (a sync killed, or failed with the store
gone, with 10 requests in flight would otherwise hold the company's whole cap until they
expire), any other at its expiry.
Times are the database server's clock, the one clock every worker shares.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import DBAPIError

from connectors.ratelimit import effective
from store.bulk import insert_ignoring
from store.fleet_tables import Pacing
from store.owners import owner_is_dead, worker_id

P = Pacing.__table__.c
IN_FLIGHT_TTL = 300.0  # seconds: longer than any request's timeout
# A send is recorded just before the request leaves; it reaches the API a little later, by
# a different delay each time, so a send is kept in the window this much longer.
MARGIN = 1.0
POLL = 0.05  # seconds between tries while every concurrent slot is taken
# This process's slots it could not give back (the store was unreachable when the request
# ended): not counted by its next slot taken, so a restart of PostgreSQL under a running
# daemon does not cost the company its cap until they expire.
_ABANDONED: set[str] = set()


@dataclass
class Counts:
    """The provider's count of requests left (X-MinLimit-Remaining), fleet-wide: the same
    reading as `connectors.ratelimit.RateLimiter`'s, kept in the company's row.

    Every send gets a ticket (`issued` counts them) and notes how many answers had been
    heard (`answered`) when it was let go; an answer to ticket t saying `left` means at
    most `left - (sends before t not answered when t was let go) - (sends since t)` are
    left (`connectors.ratelimit.effective`), so the lowest such figure is kept. A spent
    window holds every process until `hold_until` (the server's clock); answers to sends
    from before that (tickets below `heard_from`) are stale then, and until an answer
    counts afresh no window holds more sends than that one did (`cap`).
    """

    issued: int = 0
    left: int | None = None  # at `left_ticket`'s place: less the sends before it it may not count
    left_ticket: int = -1
    heard_from: int = 0
    hold_until: float | None = None
    answered: int = 0
    cap: int | None = None

    @classmethod
    def load(cls, text: str) -> Counts:
        """The row's counts; a field this version does not know (written by a newer worker
        of the fleet, mid-upgrade) is left out rather than failing every request."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in json.loads(text).items() if key in known})

    def heard(self, left: int, ticket: int, answers_before: int) -> None:
        """An answer to send `ticket`, let go when `answers_before` answers had been heard,
        says `left` requests are left."""
        self.answered += 1
        if ticket < self.heard_from:
            return
        left = effective(left, ticket, answers_before)
        if self.left is None or left + ticket < self.left + self.left_ticket:
            self.left, self.left_ticket = left, ticket
        self.cap = None

    def spent(self) -> bool:
        """Whether the lowest count, less the sends since, leaves nothing."""
        return self.left is not None and self.left - (self.issued - 1 - self.left_ticket) <= 0

    def hold(self, until: float, sent: int) -> None:
        """Wait until `until`: the window is spent with `sent` sends in it."""
        self.hold_until, self.left, self.heard_from, self.cap = until, None, self.issued, sent


class StorePacer:
    """At most `per_window` requests per `window` seconds and `concurrent` in flight, fleet-wide."""

    def __init__(
        self,
        engine: Engine,
        company_id: str,
        per_window: int,
        window: float = 60.0,
        concurrent: int = 1,
        *,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = MARGIN,
    ) -> None:
        self.engine = engine
        self.company_id = company_id
        self.per_window = per_window
        self.window = window
        self.concurrent = concurrent
        self._sleep = sleep
        self.margin = margin
        self._known: int | None = None  # the lowest count at this process's last look
        # This process's own threads queue here for its share of the cap, instead of polling
        # the row while they hold every slot themselves (a pull asks 10 pages at once: two
        # polls a request, most of the pacer's transactions, and a 50 ms stall each).
        self._local = threading.BoundedSemaphore(concurrent)
        self._mine = threading.local()  # this thread's send: its ticket and its answer's count

    @property
    def remaining_hint(self) -> int | None:
        """The provider's count of requests left, as this process last read it (see `Counts`)."""
        return self._known

    @remaining_hint.setter
    def remaining_hint(self, left: int | None) -> None:
        """Called with an answer's count, in the thread that sent its request (inside its
        slot): stored with the slot's release, in the same transaction."""
        if left is not None:
            self._mine.left = left

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot: waits for the shared window and the shared concurrency cap."""
        token = worker_id()
        self._mine.left = None
        with self._local:
            while (wait := self._try_enter(token)) > 0:
                self._sleep(wait)
            try:
                yield
            finally:
                self._leave(token)

    def _try_enter(self, token: str) -> float:
        """Take a slot for `token` and return 0, or return how long to wait before trying again."""
        with self.engine.begin() as connection:
            sent, in_flight, counts, now = self._lock_row(connection)
            if counts.hold_until is not None and now < counts.hold_until:
                return counts.hold_until - now
            if counts.spent() and sent:
                counts.hold(sent[0] + self.window + self.margin, len(sent))
                self._save(connection, sent, in_flight, counts)
                return max(counts.hold_until - now, POLL)
            if len(in_flight) >= self.concurrent:
                return POLL
            limit = min(self.per_window, counts.cap or self.per_window)
            if len(sent) >= limit:
                return max(self.window + self.margin - (now - sent[-limit]), POLL)
            sent.append(now)
            in_flight[token] = now + IN_FLIGHT_TTL
            self._mine.ticket, counts.issued = counts.issued, counts.issued + 1
            self._mine.answers_before = counts.answered
            self._save(connection, sent, in_flight, counts)
        return 0.0

    def _leave(self, token: str) -> None:
        try:
            with self.engine.begin() as connection:
                sent, in_flight, counts, _ = self._lock_row(connection)
                in_flight.pop(token, None)
                left, self._mine.left = getattr(self._mine, "left", None), None
                if left is not None:
                    ticket = getattr(self._mine, "ticket", counts.issued - 1)
                    counts.heard(left, ticket, getattr(self._mine, "answers_before", ticket))
                    self._known = counts.left
                self._save(connection, sent, in_flight, counts)
        except DBAPIError:
            _ABANDONED.add(token)
            raise

    def _lock_row(self, connection: Connection) -> tuple[list[float], dict[str, float], Counts, float]:
        """The company's row, locked until commit, pruned to what still counts at the server's now."""
        query = select(P.sent, P.in_flight, P.counts, func.extract("epoch", func.clock_timestamp())).where(
            P.company_id == self.company_id
        )
        row = connection.execute(query.with_for_update()).first()
        if row is None:
            insert_ignoring(
                connection,
                Pacing.__table__,
                [{"company_id": self.company_id, "sent": "[]", "in_flight": "{}", "counts": "{}"}],
            )
            row = connection.execute(query.with_for_update()).one()
        now = float(row[3])
        sent = [t for t in json.loads(row[0]) if now - t < self.window + self.margin]
        in_flight = {
            k: until
            for k, until in json.loads(row[1]).items()
            if until > now and k not in _ABANDONED and not owner_is_dead(k)
        }
        counts = Counts.load(row[2])
        if counts.hold_until is not None and now >= counts.hold_until:
            counts.hold_until = None
        spent_with = counts.cap if counts.left is None else None  # what a waited-out window held
        self._known = counts.left if spent_with is None else max(spent_with - len(sent), 0)
        return sent, in_flight, counts, now

    def _save(
        self, connection: Connection, sent: list[float], in_flight: dict[str, float], counts: Counts
    ) -> None:
        connection.execute(
            update(Pacing)
            .where(P.company_id == self.company_id)
            .values(
                sent=json.dumps([round(t, 4) for t in sent]),
                in_flight=json.dumps(in_flight),
                counts=json.dumps(asdict(counts)),
            )
        )
