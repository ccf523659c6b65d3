"""Reads for a command that must start fast (`arsync status`): Core SQL over table names.

Importing the ORM table classes (SQLModel, pydantic models, every table) costs more than
the whole status command otherwise does, so these few queries name their tables and type
their columns here. The tables they read are defined in `store.tables` and
`store.fleet_tables`; the column names are part of the migrations' contract.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, Engine, Integer, String, Text, bindparam, text
from sqlalchemy.sql.elements import TextClause

from store.clock import store_time
from store.owners import gone, owner_is_dead
from store.types import UTCDateTime

_WHEN = UTCDateTime()
_DIED = "the worker that claimed it died before recording the server's answer; it may have been delivered"


def _typed(sql: str, **columns) -> TextClause:
    return text(sql).columns(**columns)


_LAST_RUN = _typed(
    """SELECT status, error, started_at, finished_at, worker FROM sync_runs
       WHERE company_id = :c ORDER BY id DESC LIMIT 1""",
    status=String,
    error=Text,
    started_at=_WHEN,
    finished_at=_WHEN,
    worker=String,
)
# The lease a running sync of the company holds (`store.leases.sync_lease` names it)
_SYNC_LEASE = _typed(
    "SELECT owner, expires_at FROM leases WHERE name = 'sync:' || :c", owner=String, expires_at=_WHEN
)
_STOPPED = "the worker stopped before finishing"  # as the next run records it (`store.runs.begin`)
# The newest run is the one begun last (its id), not the one dated latest: a run replayed with
# `arsync sync --now` dated days ahead stayed "the last sync" after every real run since.
_LAST_SUCCESS = _typed(
    """SELECT finished_at AS at FROM sync_runs
       WHERE company_id = :c AND status = 'ok' ORDER BY id DESC LIMIT 1""",
    at=_WHEN,
)
_CONNECTION = _typed(
    """SELECT status, status_detail, blocked_until, refresh_token, refresh_expires_at
       FROM connections WHERE company_id = :c""",
    status=String,
    status_detail=Text,
    blocked_until=_WHEN,
    refresh_token=Text,  # sealed: read to tell whether this process's key opens it
    refresh_expires_at=_WHEN,
)
_SCHEDULE = _typed(
    """SELECT next_due_at, requested_at, claimed_by, claimed_until, last_worker, last_finished_at,
              abandoned_runs
       FROM sync_schedule WHERE company_id = :c""",
    abandoned_runs=Integer,
    next_due_at=_WHEN,
    requested_at=_WHEN,
    claimed_by=String,
    claimed_until=_WHEN,
    last_worker=String,
    last_finished_at=_WHEN,
)
_OUTBOX_COUNTS = _typed(
    "SELECT status, COUNT(*) AS n FROM outbox WHERE company_id = :c GROUP BY status", status=String, n=Integer
)
_OUTBOX_NEEDING_ADMIN = _typed(
    """SELECT id, status, recipient, subject, last_error, claimed_at FROM outbox
       WHERE company_id = :c AND status IN ('in_doubt', 'failed') ORDER BY id DESC LIMIT 50""",
    id=Integer,
    status=String,
    recipient=String,
    subject=String,
    last_error=Text,
    claimed_at=_WHEN,
)
# Mail waiting to be tried again (the server answered "later", or could not be reached):
# how many, the earliest next try, and the newest one's error
_OUTBOX_RETRYING = _typed(
    """SELECT COUNT(*) AS n, MIN(next_attempt_at) AS next_try, MAX(id) AS newest FROM outbox
       WHERE company_id = :c AND status = 'queued' AND last_error IS NOT NULL""",
    n=Integer,
    next_try=_WHEN,
    newest=Integer,
)
_OUTBOX_ERROR = _typed("SELECT last_error FROM outbox WHERE id = :id", last_error=Text)
# Claimed mail of a claimer that may have died: settled (`sending` in doubt, `claimed` queued
# again) by the next dispatch of a worker, or by `arsync mail resend|drop` of the message.
_CLAIMED_MAIL = _typed(
    """SELECT o.id, o.status, o.recipient, o.subject, o.claimed_by, o.claimed_at, w.alive_until
       FROM outbox o LEFT JOIN workers w ON w.worker = o.claimed_by
       WHERE o.company_id = :c AND o.status IN ('claimed', 'sending') ORDER BY o.id DESC""",
    id=Integer,
    status=String,
    recipient=String,
    subject=String,
    claimed_by=String,
    claimed_at=_WHEN,
    alive_until=_WHEN,
)
_REQUESTED_INVITES = _typed(  # `store.portal` decided them; a worker's dispatch issues them
    """SELECT COUNT(*) AS n, MIN(requested_at) AS oldest FROM access_requests
       WHERE company_id = :c AND invite_ref IS NOT NULL AND handled_at IS NULL""",
    n=Integer,
    oldest=_WHEN,
)
# records whose latest version in the books could not be read (`store.quarantine`): per
# entity how many (a record quarantined by several runs counts once), and the newest rows
_QUARANTINED_COUNTS = _typed(
    """SELECT entity, COUNT(DISTINCT ref) + SUM(CASE WHEN ref IS NULL THEN 1 ELSE 0 END) AS n
       FROM quarantine WHERE company_id = :c AND resolved_at IS NULL GROUP BY entity ORDER BY entity""",
    entity=String,
    n=Integer,
)
QUARANTINE_LISTED = 20  # records `status` names; the counts cover every one
# Per record: its newest reason, since when it has been unreadable (its oldest outstanding row)
# and what an admin knows it by (an invoice's number, a customer's name: the ref is the API's id)
_QUARANTINED = _typed(
    f"""SELECT q.id, q.entity, q.ref, q.reason, g.since, i.doc_number, k.display_name
        FROM (SELECT entity, ref, MIN(seen_at) AS since, MAX(id) AS newest FROM quarantine
              WHERE company_id = :c AND resolved_at IS NULL AND ref IS NOT NULL
              GROUP BY entity, ref) g
        JOIN quarantine q ON q.id = g.newest
        LEFT JOIN invoices i ON g.entity = 'invoices' AND i.company_id = :c AND i.ref = g.ref
        LEFT JOIN customers k ON g.entity = 'customers' AND k.company_id = :c AND k.ref = g.ref
        ORDER BY g.newest DESC LIMIT {QUARANTINE_LISTED}""",
    id=Integer,
    entity=String,
    ref=String,
    reason=Text,
    since=_WHEN,
    doc_number=String,
    display_name=String,
)
_QUARANTINED_NO_REF = _typed(  # a record without an id: each row is one
    f"""SELECT id, entity, reason, seen_at AS since FROM quarantine
        WHERE company_id = :c AND resolved_at IS NULL AND ref IS NULL
        ORDER BY id DESC LIMIT {QUARANTINE_LISTED}""",
    id=Integer,
    entity=String,
    reason=Text,
    since=_WHEN,
)
_CURSOR = text("SELECT cursor FROM sync_cursors WHERE company_id = :c").columns(cursor=Text)
_REQUESTS_JOB = _typed(  # the job issuing them (`store.jobs.REQUESTED`): running, or when it last ran
    "SELECT claimed_by, claimed_until, last_run_at FROM fleet_jobs WHERE name = 'requested'",
    claimed_by=String,
    claimed_until=_WHEN,
    last_run_at=_WHEN,
)
_DEFINITIONS = text("SELECT company_id, definition FROM company_definitions ORDER BY company_id")
# heartbeats are judged on the store's clock (`store.clock`): the server's on PostgreSQL
_LIVE_WORKERS = text("SELECT worker FROM workers WHERE alive_until >= :now").bindparams(
    bindparam("now", type_=_WHEN)
)


def stored_definitions(engine: Engine) -> dict[str, dict]:
    """Every company definition kept in the store (`arsync company add`), by id in id order."""
    with engine.connect() as connection:
        return {company_id: json.loads(body) for company_id, body in connection.execute(_DEFINITIONS)}


def company_glance(engine: Engine, company_id: str) -> dict:
    """What `arsync status` shows of one company, read in one connection.

    Keys: `last_run` (status, error, started_at, finished_at, worker, or None: a run its
    stopped process left `running` is `interrupted`, see `_run_as_it_stands`), `last_success`,
    `connection` (status, status_detail, blocked_until, or None), `schedule` (next_due_at,
    requested_at, claimed_by, claimed_until, last_worker, last_finished_at,
    abandoned_runs, or None),
    `outbox` (count per status), `requested_invites` (n, oldest: portal requests' invitations
    no worker has issued yet), `requests_job` (the claim and last run of the job issuing
    them, or None), `retrying` (messages queued to be tried again: n, next_try, error, or
    None), `needing_admin` (in-doubt and failed messages, newest first, counting the
    mail of a dead claimer as settled: `_as_settled`) and
    `deletions_unseen_since` (deletions in the books since then are unknown until a full
    sync, or None), `quarantined` (`_quarantined`), and `store_now` (the store's clock,
    which claims expire on).
    """
    params = {"c": company_id}
    with engine.connect() as connection:

        def one(query: TextClause) -> dict | None:
            row = connection.execute(query, params).mappings().first()
            return dict(row) if row else None

        now = store_time(connection)
        seen = {
            "store_now": now,
            "last_run": _run_as_it_stands(one(_LAST_RUN), one(_SYNC_LEASE), now),
            "last_success": connection.execute(_LAST_SUCCESS, params).scalar(),
            "connection": one(_CONNECTION),
            "schedule": one(_SCHEDULE),
            "outbox": {row.status: row.n for row in connection.execute(_OUTBOX_COUNTS, params)},
            "requested_invites": one(_REQUESTED_INVITES),
            "requests_job": one(_REQUESTS_JOB),
            "needing_admin": [
                dict(row) for row in connection.execute(_OUTBOX_NEEDING_ADMIN, params).mappings()
            ],
            "retrying": _retrying(connection, params),
            "deletions_unseen_since": _deletions_unseen_since(connection.execute(_CURSOR, params).scalar()),
            "quarantined": _quarantined(connection, params),
        }
        stranded = [
            row
            for row in connection.execute(_CLAIMED_MAIL, params).mappings()
            if row["claimed_by"] and gone(row["claimed_by"], row["alive_until"], now)
        ]
    return _as_settled(seen, stranded)


def _retrying(connection: Connection, params: dict) -> dict | None:
    """Messages queued to be tried again: n, next_try, error (the newest's); None if none."""
    found = connection.execute(_OUTBOX_RETRYING, params).mappings().first()
    if not found or not found["n"]:
        return None
    error = connection.execute(_OUTBOX_ERROR, {"id": found["newest"]}).scalar()
    return {"n": found["n"], "next_try": found["next_try"], "error": error}


def _run_as_it_stands(run: dict | None, lease: dict | None, now: datetime) -> dict | None:
    """The last run as the next one records it: a run still `running` whose process no longer
    holds the company's sync lease (killed, its machine lost: the lease ran out, or names a
    process of this machine that has exited) was interrupted, not running for ever."""
    if run is None or run["status"] != "running":
        return run
    if (
        lease is not None
        and lease["owner"] == run["worker"]
        and not gone(lease["owner"], lease["expires_at"], now)
    ):
        return run
    return run | {"status": "interrupted", "error": _STOPPED}


def _as_settled(seen: dict, stranded: list) -> dict:
    """The company's outbox as it stands once its dead claimers' mail is settled (what any
    dispatch, or `arsync mail resend|drop` of the message, does first): `sending` mail is in
    doubt, `claimed` mail queued again. Read-only, `status` shows it so, not as `sending`
    for ever when no worker is left to settle it."""
    counts = seen["outbox"]
    for row in stranded:
        settled = "in_doubt" if row["status"] == "sending" else "queued"
        counts[row["status"]] -= 1
        counts[settled] = counts.get(settled, 0) + 1
        if settled == "in_doubt":
            seen["needing_admin"].append(
                {"id": row["id"], "status": settled, "recipient": row["recipient"], "subject": row["subject"]}
                | {"last_error": _DIED, "claimed_at": row["claimed_at"]}
            )
    seen["outbox"] = {status: n for status, n in counts.items() if n}
    seen["needing_admin"].sort(key=lambda entry: entry["id"], reverse=True)
    return seen


def _quarantined(connection: Connection, params: dict) -> dict | None:
    """The outstanding quarantine: counts per entity and the newest `QUARANTINE_LISTED` records
    (each with its newest reason, since when it has been unreadable, and its stored number or
    name, if any); None if empty."""
    counts = {row.entity: row.n for row in connection.execute(_QUARANTINED_COUNTS, params)}
    if not counts:
        return None
    rows = [
        *connection.execute(_QUARANTINED, params).mappings(),
        *connection.execute(_QUARANTINED_NO_REF, params).mappings(),
    ]
    newest = sorted(rows, key=lambda row: row["id"], reverse=True)[:QUARANTINE_LISTED]
    records = [
        {
            "entity": row["entity"],
            "ref": row.get("ref"),
            "known_as": row.get("doc_number") or row.get("display_name"),
            "reason": row["reason"],
            "since": row["since"],
        }
        for row in newest
    ]
    return {"counts": counts, "records": records}


def _deletions_unseen_since(cursor: str | None) -> str | None:
    """Since when deletions in the books are unknown to the store (`store.runs.Run`), if so."""
    try:
        return json.loads(cursor).get("deletions_unseen_since") if cursor else None
    except (ValueError, AttributeError):
        return None


def live_worker_count(engine: Engine) -> int:
    """How many `arsync run` workers are alive: their heartbeat not yet run out, and not a
    process of this host that has exited (killed: its heartbeat lasts minutes more)."""
    with engine.connect() as connection:
        workers = connection.execute(_LIVE_WORKERS, {"now": store_time(connection)}).scalars()
        return sum(1 for worker in workers if not owner_is_dead(worker))
