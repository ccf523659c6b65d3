"""Client-side pacing: at most N requests per window and M in flight, per company.

Used so arsync stays under a provider's limits instead of discovering them through 429s.
A client takes its pacer from `ConnectorSettings.pacing` when the caller injects one (a
budget shared by every process, e.g. `store.pacing.StorePacer`), else this module's
per-process `RateLimiter`. Clock and sleep are injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Pacer(Protocol):
    """What a client paces its requests with: hold `slot()` around each request."""

    remaining_hint: int | None  # the provider's own count of requests left in this window

    def slot(self) -> AbstractContextManager[None]: ...


PacingFactory = Callable[[int, float, int], Pacer]
"""Given (requests per window, window in seconds, requests in flight), the pacer to use."""


def effective(left: int, ticket: int, answers_before: int) -> int:
    """An answer's count `left` at its request's place among the sends: less the `ticket`
    requests let go before it that had not all been answered (`answers_before` had) when it
    was let go; the provider may have counted those after it, or not yet."""
    return left - (ticket - answers_before)


class RateLimiter:
    def __init__(
        self,
        per_window: int,
        window_seconds: float = 60.0,
        concurrent: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_window = per_window
        self.window = window_seconds
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrent)
        self._clock = clock
        self._sleep = sleep
        # The provider's own count (X-MinLimit-Remaining style headers), whatever order
        # requests reach it and answers come back in. Each request gets a ticket as it is
        # let go, noting how many answers had been heard by then. An answer to ticket t
        # saying `left` counted every request answered before t was let go, but perhaps
        # none of the others: those let go before t and not yet answered then (still on
        # their way, the provider may count them after t: `effective`) and those let
        # go after t. So at most `left - (those before t) - (those after t)` are left now,
        # and the lowest such figure is kept: an answer counted early cannot raise the
        # count a later one lowered. No thread sends into a spent window, asked ahead or
        # not, and a spent window holds every thread until its oldest send leaves it;
        # answers to requests let go before that are stale then. The provider allowed as
        # many as were sent in that window (`_cap`): until an answer counts afresh, no more
        # are sent in any window (it slides: after the wait, as many go as left it).
        self._hint: int | None = None  # `left` less those before its ticket
        self._cap: int | None = None
        self._hint_ticket = -1
        self._tickets = 0  # the next request's ticket
        self._answers = 0  # answers with a count heard so far
        self._heard_from = 0  # answers to requests let go before this ticket are stale
        self._hold_until = float("-inf")
        # A spent window is waited out once the requests in flight have ended: one still on
        # its way could otherwise be counted in the next window, which the first requests
        # after the wait take as empty (and their counts may show the window spent already).
        self._in_flight = 0
        self._ended = threading.Condition(self._lock)
        self._ticket = threading.local()

    @property
    def remaining_hint(self) -> int | None:
        """The provider's count of requests left, from the answer that says least, less the
        requests let go before its own that it may not have counted (see above); once a
        spent window has been waited out, what its sends leave of the count they reached;
        None before any answer."""
        if self._hint is None and self._cap is not None:
            return max(self._cap - len(self._sent), 0)
        return self._hint

    @remaining_hint.setter
    def remaining_hint(self, left: int | None) -> None:
        """Called with an answer's count, in the thread that sent its request."""
        with self._lock:
            ticket = getattr(self._ticket, "number", self._tickets - 1)
            answers_before = getattr(self._ticket, "answers_before", ticket)
            if left is None:
                return
            self._answers += 1
            if ticket < self._heard_from:
                return
            left = effective(left, ticket, answers_before)
            if self._hint is None or left + ticket < self._hint + self._hint_ticket:
                self._hint, self._hint_ticket = left, ticket
            self._cap = None

    def _reserve(self) -> float:
        """Reserve a send time; return how long to wait before it."""
        with self._lock:
            while True:
                now = self._clock()
                if now < self._hold_until:
                    return self._hold_until - now
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if self._hint is not None and self._sent:
                    left = self._hint - (self._tickets - 1 - self._hint_ticket)  # less those sent since
                    if left <= 0:
                        if self._in_flight and self._ended.wait(timeout=self.window):
                            continue  # one ended, its count heard: look again
                        self._hold_until = self._sent[0] + self.window
                        self._hint, self._heard_from, self._cap = None, self._tickets, len(self._sent)
                        return max(self._hold_until - now, 0.0)
                if len(self._sent) < min(self.per_window, self._cap or self.per_window):
                    self._sent.append(now)
                    self._ticket.number, self._ticket.answers_before = self._tickets, self._answers
                    self._tickets += 1
                    self._in_flight += 1
                    return 0.0
                return self.window - (now - self._sent[0])

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot: waits for both the window and the concurrency cap."""
        with self._slots:
            while (wait := self._reserve()) > 0:
                self._sleep(wait)
            try:
                yield
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._ended.notify_all()


def make_pacer(
    factory: PacingFactory | None,
    per_window: int,
    window_seconds: float,
    concurrent: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Pacer:
    """The injected pacer for these limits, or a per-process `RateLimiter` when none is."""
    if factory is not None:
        return factory(per_window, window_seconds, concurrent)
    return RateLimiter(per_window, window_seconds, concurrent, clock=clock, sleep=sleep)
