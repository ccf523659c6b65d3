"""`RetryPolicy.run`: a message's immediate retries within one delivery run."""

from __future__ import annotations

import asyncio
import time

from mailer.results import Outcome, SendResult
from mailer.retry import RetryPolicy


class Attempts:
    """An `attempt` answering the given outcomes in turn, recording when each began."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.began: list[float] = []

    async def __call__(self, message_id: str) -> SendResult:
        self.began.append(time.monotonic())
        outcome = self.outcomes[min(len(self.began), len(self.outcomes)) - 1]
        return SendResult(message_id, outcome, None, f"attempt {len(self.began)}")


def run(policy: RetryPolicy, attempt: Attempts, stop=None) -> SendResult:
    return asyncio.run(policy.run(attempt, "m1", stop=stop))


def test_a_transient_result_is_tried_again_until_one_is_not():
    attempt = Attempts(Outcome.TRANSIENT, Outcome.TRANSIENT, Outcome.DELIVERED)
    result = run(RetryPolicy(attempts=5, initial_seconds=0.01, max_seconds=0.02), attempt)
    assert (result.outcome, result.detail, len(attempt.began)) == (Outcome.DELIVERED, "attempt 3", 3)


def test_results_that_are_not_transient_are_never_tried_again():
    for outcome in (Outcome.DELIVERED, Outcome.PERMANENT, Outcome.IN_DOUBT, Outcome.UNSENT):
        attempt = Attempts(outcome, Outcome.DELIVERED)
        result = run(RetryPolicy(attempts=3, initial_seconds=0.01), attempt)
        assert (result.outcome, len(attempt.began)) == (outcome, 1)


def test_the_last_transient_result_is_returned_once_the_attempts_are_spent():
    attempt = Attempts(Outcome.TRANSIENT)
    result = run(RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.02), attempt)
    assert (result.outcome, result.detail, len(attempt.began)) == (Outcome.TRANSIENT, "attempt 3", 3)
    single = Attempts(Outcome.TRANSIENT)
    assert run(RetryPolicy(attempts=1), single).outcome is Outcome.TRANSIENT and len(single.began) == 1


def test_the_waits_between_attempts_grow_and_stay_under_their_ceiling():
    """Full jitter: attempt n waits up to initial * 2**(n-1), never over max_seconds."""
    attempt = Attempts(Outcome.TRANSIENT)
    run(RetryPolicy(attempts=5, initial_seconds=0.05, max_seconds=0.1), attempt)
    waits = [later - earlier for earlier, later in zip(attempt.began, attempt.began[1:], strict=False)]
    ceilings = [0.05, 0.1, 0.1, 0.1]
    assert len(waits) == 4
    assert all(wait <= ceiling + 0.05 for wait, ceiling in zip(waits, ceilings, strict=True)), waits


def test_a_stop_ends_the_retries_with_the_last_result():
    attempt = Attempts(Outcome.TRANSIENT)
    stopped = False

    def stop() -> bool:
        return stopped

    async def stop_after_the_first():
        nonlocal stopped
        result = policy.run(attempt, "m1", stop=stop)
        task = asyncio.ensure_future(result)
        while not attempt.began:
            await asyncio.sleep(0.001)
        stopped = True
        return await task

    policy = RetryPolicy(attempts=10, initial_seconds=5.0, max_seconds=5.0)
    began = time.monotonic()
    result = asyncio.run(stop_after_the_first())
    assert result.outcome is Outcome.TRANSIENT
    assert time.monotonic() - began < 1.0  # neither a 5 s wait nor ten attempts
    assert len(attempt.began) <= 2
