"""A company's API budget shared by every process on one PostgreSQL store.

The same contract as `connectors.ratelimit.RateLimiter` (`slot()` and `remaining_hint`),
so a connector is handed either without knowing which. State is one `pacing` row per
company, read and written under `SELECT ... FOR UPDATE`: the send times of the last
window and the requests in flight, each named after its process ("host:pid:tag", as lease
owners are) and with an expiry: the slot of a process of this host that has exited comes
back at once (a sync killed, or failed with the store gone, with 10 requests in flight
would otherwise hold the company's whole cap until they expire), any other at its expiry.
Times are the database server's clock, the one clock every worker shares.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import DBAPIError

from store.bulk import insert_ignoring
from store.fleet_tables import Pacing
from store.leases import owner_is_dead, worker_id

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
        self.remaining_hint: int | None = None  # X-MinLimit-Remaining style headers

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot: waits for the shared window and the shared concurrency cap."""
        token = worker_id()
        while (wait := self._try_enter(token)) > 0:
            self._sleep(wait)
        try:
            yield
        finally:
            self._leave(token)

    def _try_enter(self, token: str) -> float:
        """Take a slot for `token` and return 0, or return how long to wait before trying again."""
        with self.engine.begin() as connection:
            sent, in_flight, now = self._lock_row(connection)
            hint, self.remaining_hint = self.remaining_hint, None
            if hint is not None and hint <= 0 and sent:
                return max(self.window + self.margin - (now - sent[0]), POLL)
            if len(in_flight) >= self.concurrent:
                return POLL
            if len(sent) >= self.per_window:
                return max(self.window + self.margin - (now - sent[-self.per_window]), POLL)
            sent.append(now)
            in_flight[token] = now + IN_FLIGHT_TTL
            self._save(connection, sent, in_flight)
        return 0.0

    def _leave(self, token: str) -> None:
        try:
            with self.engine.begin() as connection:
                sent, in_flight, _ = self._lock_row(connection)
                in_flight.pop(token, None)
                self._save(connection, sent, in_flight)
        except DBAPIError:
            _ABANDONED.add(token)
            raise

    def _lock_row(self, connection: Connection) -> tuple[list[float], dict[str, float], float]:
        """The company's row, locked until commit, pruned to what still counts at the server's now."""
        query = select(P.sent, P.in_flight, func.extract("epoch", func.clock_timestamp())).where(
            P.company_id == self.company_id
        )
        row = connection.execute(query.with_for_update()).first()
        if row is None:
            insert_ignoring(
                connection,
                Pacing.__table__,
                [{"company_id": self.company_id, "sent": "[]", "in_flight": "{}"}],
            )
            row = connection.execute(query.with_for_update()).one()
        now = float(row[2])
        sent = [t for t in json.loads(row[0]) if now - t < self.window + self.margin]
        in_flight = {
            k: until
            for k, until in json.loads(row[1]).items()
            if until > now and k not in _ABANDONED and not owner_is_dead(k)
        }
        return sent, in_flight, now

    def _save(self, connection: Connection, sent: list[float], in_flight: dict[str, float]) -> None:
        connection.execute(
            update(Pacing)
            .where(P.company_id == self.company_id)
            .values(sent=json.dumps([round(t, 4) for t in sent]), in_flight=json.dumps(in_flight))
        )
