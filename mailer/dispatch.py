"""The dispatcher: claim due outbox rows, hand them to a transport, record each answer.

Order matters for "never mail a customer twice": rows are marked `sending` and that is
committed before anything reaches the server; the answer is recorded afterwards. A
crash in between leaves `sending` rows that a later run turns `in_doubt` (see
`mailer.claim`), for an admin to resend or drop. A transport that reports each message
as it starts (`marks_start`) has each row marked `sending` just before its message, so a
crash leaves in doubt only what had begun; the rest of the batch is queued again.

A run asked to stop (`stop`, the first Ctrl-C) claims no further batch, and begins no
further message of the batch in hand: only what is already on its way finishes (a
transport that `heeds_halt` also gives up a connection it is still opening, and its
retries). The messages not begun go back to `queued` as they were (no attempt counted, no
retry delay) in the transaction that records the answers of those sent, so nothing is left
`sending` to turn in doubt once the lease runs out.

Automatic mail is claimed only while its company's delivery window is open, and (given a
`clock`) each message of it is checked again just before it leaves: a window that closed
while the batch was on its way sends the automatic messages not begun back to `queued` the
same way, to go at the next opening; manual mail goes on.

Automatic reminders whose invoices all stopped being due while they waited for the window,
invitations that can no longer be accepted (automatic ones held for the window, manual ones
queued again after a failed attempt) and automatic invitations of a company that turned
`auto_invite` off are withdrawn just before claiming (`mailer.withdraw`, `mailer.uninvite`), when
the caller says how (`withdraw`). An invitation claimed has its link's days counted again from `now`
(`mailer.validity`): held for the window or a server that was down, it still has them all.

Each answer is written to its row as `mailer.answers` says (a message delivered to some of its
recipients and deferred for others goes again to those alone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, func, select, update

from mailer.answers import record
from mailer.claim import CLAIMED, Claimed, WindowFor, claim, claimable, expire_leases, open_companies, start
from mailer.outbox import OUTBOX
from mailer.outgoing import Outgoing
from mailer.preview import Planned, preview
from mailer.results import Outcome, SendResult
from mailer.retry import Backoff
from mailer.take_back import REMINDER_REASONS
from mailer.transports import OnStart, Transport
from mailer.validity import count_from
from mailer.withdraw import Withdrawal
from portal_rules.windows import is_open

log = structlog.get_logger("arsync.mailer")

LEASE = timedelta(minutes=10)


@dataclass(slots=True)
class DispatchReport:
    """Row ids by what happened to them in this run (or, for a dry run, `planned`)."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)  # transient: queued again, later
    partly: list[int] = field(default_factory=list)  # of those, delivered to the other recipients
    failed: list[int] = field(default_factory=list)  # permanent, or retries exhausted
    in_doubt: list[int] = field(default_factory=list)  # the connection broke during DATA
    expired: list[int] = field(default_factory=list)  # leases run out: now in_doubt
    errors: dict[int, str] = field(default_factory=dict)  # row id -> server answer
    planned: list[Planned] = field(default_factory=list)  # dry run only
    dry_run: bool = False
    stopped: bool = False  # ended by `stop()`, not by finding nothing more to claim
    handed_back: list[int] = field(default_factory=list)  # claimed, not begun: queued as they were
    withdrawn: list[int] = field(default_factory=list)  # reminders no longer due: dropped unsent
    replanned: list[int] = field(default_factory=list)  # partly due: dropped, their due part planned again
    merged: list[int] = field(default_factory=list)  # one of a customer's several: planned again together
    rebalanced: list[int] = field(default_factory=list)  # a balance changed: planned again with it
    readdressed: list[int] = field(default_factory=list)  # the customer's addresses changed: planned again
    redated: list[int] = field(default_factory=list)  # an invoice is due later now: reminded of when due
    held: list[int] = field(default_factory=list)  # an invoice or its customer is quarantined: planned again
    revoked: list[int] = field(default_factory=list)  # invitations no longer acceptable: dropped
    unwanted: list[int] = field(default_factory=list)  # automatic invitations, auto_invite now off: dropped
    left: int = 0  # when stopped: due messages still queued (handed back ones included)
    unreachable: str = ""  # the mail server could not be reached: why (the messages stay queued)

    def summary(self) -> dict[str, int]:
        """Counts for logs and `--json`: sent, retrying, failed, in_doubt, expired, planned,
        handed_back, withdrawn, replanned, merged, rebalanced, readdressed, redated, revoked,
        unwanted."""
        names = (
            "sent",
            "retrying",
            "failed",
            "in_doubt",
            "expired",
            "planned",
            "handed_back",
            "withdrawn",
            "replanned",
            "merged",
            "rebalanced",
            "readdressed",
            "redated",
            "revoked",
            "unwanted",
        )
        return {name: len(getattr(self, name)) for name in names}


def dispatch(
    engine: Engine,
    transport: Transport,
    *,
    now: datetime,
    window_for: WindowFor,
    worker_id: str,
    batch_size: int = 200,
    dry_run: bool = False,
    lease: timedelta = LEASE,
    backoff: Backoff = Backoff(),
    stop: Callable[[], bool] | None = None,
    withdraw: Withdrawal | None = None,
    clock: Callable[[], datetime] | None = None,
    only: Collection[int] | None = None,
) -> DispatchReport:
    """Deliver every outbox message whose time (and, if automatic, window) has come.

    Synchronous; runs the transport with `asyncio.run`, so call it from a thread with no
    running event loop. `worker_id` must be unique per running dispatcher. If the
    transport raises, the claimed rows stay `sending` and later become `in_doubt`. Once
    `stop()` is true the run ends at the next safe point (see the module docstring) with
    `stopped` set and the messages not begun queued again. `withdraw` drops the reminders no
    longer due among those about to be claimed (`mailer.withdraw.Withdrawal`). With a
    `clock`, each batch after the first reads the time again and which windows are open then,
    and each message is checked against its window again as it leaves: automatic
    mail whose window closed since the claim is queued again untouched (`handed_back`).
    With `only`, the run takes those outbox rows and no others (invitations just issued for
    portal requests, sent beside a backlog another run is working through).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if dry_run:
        stale = (lambda connection: withdraw.assess(connection, now)) if withdraw is not None else None
        planned, expiring = preview(engine, now=now, window_for=window_for, lease=lease, stale=stale)
        return DispatchReport(planned=planned, expired=expiring, dry_run=True)
    report = DispatchReport()
    with engine.begin() as connection:
        report.expired = expire_leases(connection, lease=lease)
    if report.expired:
        log.warning("mail.in_doubt", ids=report.expired, reason="lease expired")
    assessed: set[str] = set()  # companies whose waiting reminders were checked this run
    companies = _opening(engine, now, window_for, withdraw, report, assessed, first=True)
    stopping = stop or _never
    each = bool(getattr(transport, "marks_start", False))  # else the whole batch is `sending`
    closed = _closed_windows(window_for, clock) if clock is not None else None
    claimed_before = False
    while not stopping():
        if clock is not None and claimed_before:  # the time has moved on since the last batch
            now = clock()
            companies = _opening(engine, now, window_for, withdraw, report, assessed)
        claimed_before = True
        with engine.begin() as connection:  # committed before anything is sent
            batch = claim(
                connection,
                now=now,
                worker_id=worker_id,
                open_companies=companies,
                limit=batch_size,
                each=each,
                only=only,
            )
            count_from(connection, [row.id for row in batch if row.kind == "invitation"], now)
        if not batch:
            return report
        not_begun: set[int] = set()  # filled by the starter: stopping, or a window closed
        starter = _starter(engine, batch, worker_id, stopping, not_begun, closed) if each else None
        results = asyncio.run(_send(transport, batch, starter, _halting(batch, stopping, closed), now))
        not_begun.update(row.id for row in batch if _unsent(results.get(row.message_id)))
        begun = [row for row in batch if row.id not in not_begun]
        with engine.begin() as connection:  # the answers and the hand-back, together
            record(connection, begun, results, now=now, worker_id=worker_id, backoff=backoff, report=report)
            report.handed_back += _hand_back(connection, not_begun, worker_id)
        log.info("mail.batch", worker=worker_id, claimed=len(batch), **report.summary())
        if report.unreachable:  # the rest stay due, for the next run: no connection per batch now
            log.warning("mail.server_unreachable", worker=worker_id, error=report.unreachable)
            return report
    with engine.connect() as connection:
        report.stopped, report.left = True, _still_due(connection, now, companies)
    log.info("mail.stopped", worker=worker_id, handed_back=len(report.handed_back), left=report.left)
    return report


def _never() -> bool:
    return False


def _opening(
    engine: Engine,
    now: datetime,
    window_for: WindowFor,
    withdraw: Withdrawal | None,
    report: DispatchReport,
    assessed: set[str],
    *,
    first: bool = False,
) -> list[str]:
    """The companies whose automatic mail may go at `now`; the waiting reminders no longer due
    of those not `assessed` yet in this run are taken back first (added to `report`). Once per
    company a run: checking a backlog again at every batch would cost more than its sending.
    The `first` call of a run also checks the manual invitations of every company (they go
    whatever the window)."""
    with engine.begin() as connection:
        companies = open_companies(connection, now, window_for)
        fresh = [company for company in companies if company not in assessed]
        taken = withdraw(connection, now, fresh) if withdraw is not None and (fresh or first) else None
    assessed.update(fresh)
    if taken is not None and taken.revoked:
        log.info("mail.withdrawn", ids=taken.revoked, reason="invitations that can no longer be accepted")
        report.revoked += taken.revoked
    if taken is not None and taken.unwanted:
        log.info("mail.withdrawn", ids=taken.unwanted, reason="automatic invitations, auto_invite is off")
        report.unwanted += taken.unwanted
    if taken is not None and taken.reminders():
        buckets = {name: getattr(taken, name) for name in REMINDER_REASONS}
        log.info(
            "mail.withdrawn",
            ids=buckets.pop("withdrawn"),
            **buckets,
            reason="invoices no longer due, changed or quarantined, or several reminders for one customer",
        )
        for name in REMINDER_REASONS:
            getattr(report, name).extend(getattr(taken, name))
    return companies


def _starter(
    engine: Engine,
    batch: Sequence[Claimed],
    worker_id: str,
    stop: Callable[[], bool],
    not_begun: set[int],
    closed: Closed | None,
) -> OnStart:
    """The transport's `on_start`: commit rows `sending` before their messages leave. Once
    `stop()` is true it begins none, and it never begins automatic mail whose window `closed`
    since the claim: their ids go to `not_begun`, the store is not touched."""
    rows = {row.message_id: row for row in batch}
    message_ids = {row.id: row.message_id for row in batch}

    def start_some(row_ids: list[int]) -> set[str]:
        with engine.begin() as connection:
            held = start(connection, row_ids, worker_id)
        return {message_ids[row_id] for row_id in held}

    async def on_start(started: Sequence[str]) -> set[str]:
        taken = [rows[m] for m in started]
        shut = {row.id for row in taken} if stop() else closed(taken) if closed else set()
        not_begun.update(shut)
        going = [row.id for row in taken if row.id not in shut]
        return await asyncio.to_thread(start_some, going) if going else set()

    return on_start


Closed = Callable[[Sequence[Claimed]], set[int]]
"""The ids of the given rows that may not go to the server now (see `_closed_windows`)."""


def _closed_windows(window_for: WindowFor, clock: Callable[[], datetime]) -> Closed:
    """The automatic rows whose company's window is closed at `clock()`, read as they are about
    to leave: a batch claimed just before a closing may take longer than what is left of the
    window (a slow server, retries). Pure: the window comes from the settings, not the store."""

    def closed(rows: Sequence[Claimed]) -> set[int]:
        now, open_at_now = clock(), {}
        for row in rows:
            if row.automatic and row.company_id not in open_at_now:
                window = window_for(row.company_id)
                open_at_now[row.company_id] = window is not None and is_open(window, now)
        return {row.id for row in rows if row.automatic and not open_at_now[row.company_id]}

    return closed


def _unsent(result: SendResult | None) -> bool:
    """Whether the transport gave the message up before any of it reached the server."""
    return result is not None and result.outcome is Outcome.UNSENT


def _hand_back(connection: Connection, row_ids: set[int], worker_id: str) -> list[int]:
    """Rows this worker claimed but never began, queued again exactly as they were before the
    claim: not having reached the server, they cost no attempt and wait for no retry. Some may
    be `sending` already: marked, then given up before they began (`Outcome.UNSENT`)."""
    if not row_ids:
        return []
    c = OUTBOX.c
    statement = (
        update(OUTBOX)
        .where(c.id.in_(sorted(row_ids)), c.claimed_by == worker_id, c.status.in_((CLAIMED, "sending")))
        .values(status="queued", claimed_by=None, claimed_at=None)
        .returning(c.id)
    )
    return sorted(connection.execute(statement).scalars().all())


def _still_due(connection: Connection, now: datetime, companies: list[str]) -> int:
    """How many queued messages this run would still have claimed."""
    return connection.scalar(select(func.count()).select_from(OUTBOX).where(claimable(now, companies)))


def _halting(
    batch: Sequence[Claimed], stop: Callable[[], bool], closed: Closed | None
) -> Callable[[str], bool]:
    """The transport's `halt`: whether a message must not begin now, asked just before it goes
    (a group marked `sending` at once may take a while): the run is stopping, or the message is
    automatic and its window has closed since. Cheap: no store access."""
    rows = {row.message_id: row for row in batch}

    def halt(message_id: str) -> bool:
        row = rows.get(message_id)
        return stop() or (closed is not None and row is not None and bool(closed([row])))

    return halt


async def _send(
    transport: Transport,
    batch: Sequence[Claimed],
    on_start: OnStart | None,
    halt: Callable[[str], bool],
    now: datetime,
) -> dict[str, SendResult]:
    messages: list[Outgoing] = []
    results: dict[str, SendResult] = {}
    for row in batch:
        try:  # dated as it leaves: a reminder held for the window is not one written at midnight
            messages.append(Outgoing.from_stored(row.message_id, row.recipient, row.payload, dated=now))
        except Exception as exc:  # a corrupt payload fails alone, not the batch
            results[row.message_id] = SendResult(
                row.message_id, Outcome.PERMANENT, None, f"unparseable payload: {exc}"
            )
    options: dict = {"on_start": on_start} if on_start else {}
    if getattr(transport, "heeds_halt", False):  # it asks before each message, and while connecting
        options["halt"] = halt
    sent = await transport.send_many(messages, **options)
    for result in sent:
        results[result.message_id] = result
    return results
