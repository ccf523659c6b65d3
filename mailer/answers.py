"""The transport's answers recorded on their outbox rows: each row's new state, in one executemany.

A message the server takes for some recipients and refuses for others is `sent` with the
refusals noted; if some of them were only deferred (4xx), the row is instead queued again
with the usual backoff, its `recipient` narrowed to those deferred: they get the same bytes
(same Message-ID) later, the others never again. Narrowing is part of recording the answer,
so a crash before it leaves the row `sending`, hence in doubt, like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection, bindparam, or_, update

from mailer.claim import CLAIMED, Claimed
from mailer.outbox import OUTBOX
from mailer.results import Outcome, SendResult
from mailer.retry import Backoff

if TYPE_CHECKING:
    from mailer.dispatch import DispatchReport

log = structlog.get_logger("arsync.mailer")


_RECORD = (
    update(OUTBOX)
    .where(
        OUTBOX.c.id == bindparam("b_id"),
        OUTBOX.c.claimed_by == bindparam("b_worker"),
        # A late answer still counts; (no IN here: executemany cannot expand it). A `claimed`
        # row has an answer without having started (the server was found unreachable).
        or_(OUTBOX.c.status == "sending", OUTBOX.c.status == "in_doubt", OUTBOX.c.status == CLAIMED),
    )
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_retry_at", type_=OUTBOX.c.next_attempt_at.type),
        last_error=bindparam("b_error"),
        sent_at=bindparam("b_sent_at", type_=OUTBOX.c.sent_at.type),
        recipient=bindparam("b_recipient"),
    )
)


def record(
    connection: Connection,
    batch: Sequence[Claimed],
    results: dict[str, SendResult],
    *,
    now: datetime,
    worker_id: str,
    backoff: Backoff,
    report: DispatchReport,
) -> None:
    """Write every answer in one executemany; a row without an answer stays `sending`."""
    params, unreached = [], []
    for row in batch:
        result = results.get(row.message_id)
        if result is None:
            log.error("mail.no_result", id=row.id, message_id=row.message_id)
            continue
        change = _transition(row, result, now=now, backoff=backoff)
        params.append({"b_id": row.id, "b_worker": worker_id, **change})
        if not result.reached:
            report.unreachable = result.describe()
            unreached.append(row.id)
        getattr(report, _BUCKET[change["b_status"]]).append(row.id)
        if result.outcome is Outcome.DELIVERED and change["b_status"] != "sent":
            report.partly.append(row.id)
        if change["b_error"]:
            report.errors[row.id] = change["b_error"]
        if result.refused:
            refused = [str(refusal) for refusal in result.refused]
            log.warning("mail.recipients_refused", id=row.id, status=change["b_status"], refused=refused)
        if change["b_status"] in ("failed", "in_doubt"):  # retries are summed up in mail.batch
            log.warning("mail.not_delivered", id=row.id, status=change["b_status"], error=change["b_error"])
    if params:
        connection.execute(_RECORD, params)
    if unreached:  # nothing of them reached a server: untried, as a message handed back is
        c = OUTBOX.c
        connection.execute(
            update(OUTBOX)
            .where(c.id.in_(unreached), c.claimed_by == worker_id, c.status == "queued")
            .values(claimed_by=None, claimed_at=None)
        )


_BUCKET = {"sent": "sent", "queued": "retrying", "failed": "failed", "in_doubt": "in_doubt"}


def _transition(row: Claimed, result: SendResult, *, now: datetime, backoff: Backoff) -> dict:
    """The row's new state for one transport answer."""
    attempts = row.attempts + 1
    change = {
        "b_attempts": attempts,
        "b_retry_at": None,
        "b_error": result.describe() or None,
        "b_sent_at": None,
        "b_recipient": row.recipient,
    }
    if result.outcome is Outcome.DELIVERED:
        return change | _delivered(result, attempts, now=now, backoff=backoff, earlier=_refused_before(row))
    if result.outcome is Outcome.PERMANENT:
        return change | {"b_status": "failed"}
    if result.outcome is Outcome.IN_DOUBT:
        return change | {"b_status": "in_doubt"}
    if not result.reached:  # the server's fault, not the message's: not counted, never failed
        return change | {
            "b_attempts": row.attempts,
            "b_status": "queued",
            "b_retry_at": backoff.unreachable_retry(now),
        }
    retry_at = backoff.next_attempt(attempts, now)
    if retry_at is None:
        return change | {
            "b_status": "failed",
            "b_error": f"gave up after {attempts} attempts: {result.describe()}",
        }
    return change | {"b_status": "queued", "b_retry_at": retry_at}


def _delivered(
    result: SendResult, attempts: int, *, now: datetime, backoff: Backoff, earlier: str | None
) -> dict:
    """The row's change for a message the server took for at least one recipient: `sent`,
    noting whom it refused for good (now, or at an `earlier` attempt of this message); or,
    while some were only deferred (4xx), queued again for them alone, since the others already
    have it (see the module docstring)."""
    for_good = [str(r) for r in result.refused if r.recipient not in result.deferred]
    refused = "; ".join([*for_good, earlier] if earlier else for_good)
    if not result.deferred:
        return {"b_status": "sent", "b_sent_at": now, "b_error": f"refused: {refused}" if refused else None}
    narrowed = {"b_recipient": ", ".join(result.deferred)}
    deferred = "; ".join(str(r) for r in result.refused if r.recipient in result.deferred)
    note = f"{PARTLY}{f'; refused: {refused}' if refused else ''}; deferred: {deferred}"
    retry_at = backoff.next_attempt(attempts, now)
    if retry_at is None:
        return narrowed | {"b_status": "failed", "b_error": f"gave up after {attempts} attempts: {note}"}
    return narrowed | {"b_status": "queued", "b_retry_at": retry_at, "b_error": note}


PARTLY = "delivered to the other recipients"


def _refused_before(row: Claimed) -> str | None:
    """The recipients an earlier attempt of this (narrowed) message saw refused for good, as
    its note says them: they never got it, which the row must keep saying once it is sent."""
    note = row.last_error or ""
    if not note.startswith(PARTLY) or "; refused: " not in note:
        return None
    return note.split("; refused: ", 1)[1].split("; deferred: ", 1)[0]
