"""The per-process pacer (`connectors.ratelimit.RateLimiter`) and the provider's own count of
requests left (X-MinLimit-Remaining): answers in any order, and requests let go since."""

from __future__ import annotations

import threading

from connectors.ratelimit import RateLimiter


class Clock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(clock: Clock) -> RateLimiter:
    return RateLimiter(60, 60.0, 5, clock=clock.monotonic, sleep=clock.sleep)


def answered(pacer: RateLimiter, left: int, sent: threading.Event, answer: threading.Event) -> None:
    """One request on its own thread: sent, then its answer's count noted when `answer` is set."""
    with pacer.slot():
        sent.set()
        answer.wait(5)
        pacer.remaining_hint = left  # as the Xero client does, in the request's thread


def test_an_answer_counted_early_cannot_raise_the_count_a_later_one_lowered():
    """Two requests in flight; the provider counts the second first (1 left) and the first
    after it (0 left), and the first's answer comes back first: the window is spent, even
    though the last answer heard says 1."""
    clock = Clock()
    pacer = limiter(clock)
    first_sent, second_sent = threading.Event(), threading.Event()
    first_answer, second_answer = threading.Event(), threading.Event()
    first = threading.Thread(target=answered, args=(pacer, 0, first_sent, first_answer))
    second = threading.Thread(target=answered, args=(pacer, 1, second_sent, second_answer))
    first.start()
    assert first_sent.wait(5)
    second.start()
    assert second_sent.wait(5)
    first_answer.set()
    first.join(5)
    second_answer.set()
    second.join(5)
    with pacer.slot():  # the next request waits for the window, not for a 429
        pass
    assert clock.slept == [60.0]


def on_its_way(pacer: RateLimiter, left: int) -> tuple[threading.Thread, threading.Event]:
    """A request let go and not answered yet: set the event and its answer says `left`."""
    sent, answer = threading.Event(), threading.Event()
    thread = threading.Thread(target=answered, args=(pacer, left, sent, answer))
    thread.start()
    assert sent.wait(5)
    return thread, answer


def later(pacer: RateLimiter) -> tuple[threading.Thread, threading.Event]:
    """A request on its own thread; the event is set once it is let go."""
    went = threading.Event()

    def request() -> None:
        with pacer.slot():
            went.set()

    thread = threading.Thread(target=request)
    thread.start()
    return thread, went


def test_a_request_let_go_earlier_may_reach_the_provider_after_a_later_one_is_counted():
    """The provider allows 3 a minute. Two requests let go; the second reaches it first and
    its answer says 2 left, while the first is still on its way: one more may go now, not
    two (the first will be counted too)."""
    clock = Clock()
    pacer = limiter(clock)
    first, answer = on_its_way(pacer, left=0)
    with pacer.slot():
        pacer.remaining_hint = 2  # counted before the first request
    with pacer.slot():
        pass
    fourth, went = later(pacer)  # would draw a 429 once the first arrives
    assert not went.wait(0.2)
    answer.set()
    first.join(5)
    fourth.join(5)
    assert went.is_set() and clock.slept == [60.0]


def test_requests_sent_after_an_answer_count_against_it():
    """2 left when the first answer came; two more requests let go since: the third waits."""
    clock = Clock()
    pacer = limiter(clock)
    with pacer.slot():
        pacer.remaining_hint = 2
    for _ in range(2):
        with pacer.slot():
            pass
    assert clock.slept == []
    with pacer.slot():
        pass
    assert clock.slept == [60.0]


def test_a_spent_window_is_waited_out_once_the_requests_in_flight_have_ended():
    """A request still on its way when the window is spent could be counted in the next
    one, which the first requests after the wait take as empty: the wait starts once it has
    ended. Its count, from the window before, does not make a second wait."""
    clock = Clock()
    pacer = limiter(clock)
    late, answer = on_its_way(pacer, left=0)
    with pacer.slot():
        pacer.remaining_hint = 0  # the window is spent
    waiting, went = later(pacer)
    assert not went.wait(0.2) and clock.slept == []  # not while a request is in flight
    answer.set()  # it ends, with its own count of the spent window
    late.join(5)
    waiting.join(5)
    assert went.is_set() and clock.slept == [60.0]
    with pacer.slot():
        pass
    assert clock.slept == [60.0]  # no second wait


def test_after_a_spent_window_only_as_many_go_as_left_it():
    """The provider allows 3 a minute and counts a sliding minute: sends at 0, 10 and 20 s
    spend it. The wait ends at 60 s, when only the first has left: one may go then, the
    next at 70 s (when the second leaves), not a round at once."""
    clock = Clock()
    pacer = limiter(clock)
    for left in (2, 1, 0):
        with pacer.slot():
            pacer.remaining_hint = left
        clock.now += 10
    for _ in range(2):
        with pacer.slot():
            pass
    assert clock.slept == [30.0, 10.0]
    assert clock.now == 70.0
