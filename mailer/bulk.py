"""Rendering many reminders at once, on every core.

Building a message with the stdlib `email` package costs about a millisecond or more (it
parses every address header when set and again when serialized, more so for non-ASCII
names), so 10,000 reminders cost tens of seconds on one core. Rendering is a pure function
of plain dataclasses, so large batches go to worker processes; small ones stay here, where
starting workers would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from mailer.environment import template_failure
from mailer.mails import ReminderMail, Sender
from mailer.outbox import Rendered, rendered
from mailer.render import render_reminder

PARALLEL_FROM = 400  # below this, worker start-up costs more than it saves


def render_reminders(
    sender: Sender, mails: Sequence[tuple[ReminderMail, str]], *, now: datetime, workers: int | None = None
) -> list[Rendered]:
    """Each (mail, key) rendered and serialized for the outbox, in order."""
    jobs = [(sender, mail, key, now) for mail, key in mails]
    workers = workers or min(os.cpu_count() or 1, 8)
    if len(jobs) < PARALLEL_FROM or workers < 2:
        return [_render(job) for job in jobs]
    chunk = max(50, len(jobs) // (workers * 4))
    context = multiprocessing.get_context("spawn")  # the caller may hold threads and connections
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_render, jobs, chunksize=chunk))


def _render(job: tuple[Sender, ReminderMail, str, datetime]) -> Rendered:
    """One job; a template's failure is a `TemplateProblem` naming its file and line, worded
    here: a worker process's traceback does not cross back to the caller."""
    sender, mail, key, now = job
    try:
        return rendered(render_reminder(sender, mail, key=key, now=now))
    except Exception as exc:
        problem = template_failure(exc)
        if problem is None:
            raise
        raise problem from exc
