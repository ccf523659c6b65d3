"""Automatic reminders taken back before sending: invoices they list stopped being due while
they waited, or another reminder would reach the same customer at the same time.

A reminder planned outside the delivery window waits in the outbox for the next opening
(Saturday's reminder goes out on Monday). An invoice it lists may meanwhile have stopped
being one to remind of (paid, voided, deleted, no longer shown in the portal, or the customer
was paused or left the portal): sending it as rendered would ask for money no longer owed.
So may the reminder's offset: the company took it out of `reminder_offsets_days` (or emptied
the list, to send no reminders) while it waited.
Just before the dispatcher claims automatic mail, such a reminder is `dropped` with the
reason, in one transaction with its ledger rows:

- the (invoice, offset) pairs no longer due turn from `sent` to `skipped`: they were never
  sent, and stay done (a reopened invoice is reminded at its next offset);
- the pairs still due are taken out of the ledger, so the next planning (every minute in the
  daemon, or `arsync reminders plan`) plans them again, in a reminder listing only them.

A customer with several untried reminders about to go (Saturday's and Sunday's, both held
for Monday) has them all taken back the same way, their pairs planned again as one email; so
does one with a single reminder about to go and more due now that no planning has enqueued
yet (a later offset of an invoice it lists, reached while it waited, or another invoice):
the daemon's planner runs beside its dispatcher, and an admin may dispatch before planning,
so the held reminder went and the rest followed a minute later, a second email, perhaps for
an offset the catch-up rule skips;
so is a reminder listing an invoice whose balance changed since it was rendered (paid in
part over the weekend), so that the email asks for what is owed on the day it goes, and one
addressed to other contacts than the customer's valid ones now (the books replaced or removed
an address): it must not reach an address that no longer belongs to the customer. A reminder
listing an invoice whose offset is no longer due today (the books moved its due date later,
an extension over the weekend) is taken back too, its pairs released: sent, it would call
"past due" an invoice that is not; planning reminds of it when its new date comes.

Invitations waiting to go are taken back the same way (`mailer.uninvite`).

Only queued reminders are taken back, never one on its way to the server. One already tried
(a 4xx, the server down, delivered to some recipients and deferred for others, or queued
again by `mail resend`) is dropped
only when none of its invoices is due any more, and its ledger rows stay `sent`: it may have
reached someone, so nothing of it is planned again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    or_,
    select,
    true,
    update,
)

from mailer.claim import due
from mailer.outbox import OUTBOX
from mailer.uninvite import (
    REVOKED,
    UNWANTED,
    AutoInvites,
    drop_invitations,
    stale_invitations,
)
from portal_rules.balances import company_today
from portal_rules.reminders import remindable
from portal_rules.types import CustomerFacts
from store.facts import invoice_facts
from store.ledger import plan_due, reminder_recipients
from store.quarantine import holds
from store.tables import Customer, Invoice, ReminderLedger

LEDGER, INVOICES, CUSTOMERS = ReminderLedger.__table__, Invoice.__table__, Customer.__table__
FACTS = {
    "customer_ref", "balance", "total", "due_date", "doc_number", "issue_date", "currency",
    "source_sent", "sent_override", "voided", "deleted", "draft",
}  # fmt: skip  # the invoice columns `invoice_facts` reads (besides its ref)
CHUNK = 500
WITHDRAWN = (
    "withdrawn before sending: none of its invoices is due any more "
    "(paid, voided, hidden or paused, or the offset is no longer sent)"
)
REPLANNED = "withdrawn before sending: some of its invoices are no longer due; the others are planned again"
MERGED = "withdrawn before sending: planned again with the customer's other reminders due now, as one email"
REBALANCED = "withdrawn before sending: an invoice it lists has another balance now; planned again with it"
REDATED = "withdrawn before sending: an invoice it lists is due later now; it is reminded of when due"
READDRESSED = "withdrawn before sending: the customer's email addresses changed; planned again to them"
HELD = (
    "withdrawn before sending: the books' latest version of an invoice it lists, or of its customer, "
    "could not be read (quarantined: `arsync status`); planned again once a sync reads it"
)
# A verdict's reminder buckets, in the order they are dropped, with the reason each records.
REMINDER_REASONS = {
    "withdrawn": WITHDRAWN,
    "replanned": REPLANNED,
    "merged": MERGED,
    "rebalanced": REBALANCED,
    "readdressed": READDRESSED,
    "redated": REDATED,
    "held": HELD,
}

TodayOf = Callable[[str], date | None]
"""A company's date now (None: unknown, the offsets' dates are not checked)."""
ImportsInactive = Callable[[str], bool]
"""Whether a company imports its inactive customers into the portal (they may be reminded)."""
OffsetsOf = Callable[[str], Sequence[int] | None]
"""A company's `reminder_offsets_days` (None: unknown, what else is due is not checked)."""
Pair = tuple[str, int]  # (invoice ref, offset)


@dataclass(slots=True)
class Verdict:
    """The reminders to take back: `withdrawn` list nothing still due; `replanned` list some
    invoices still due (their pairs, to plan again), and others not; `merged` are wholly due
    but would reach their customer beside another reminder (all of their pairs planned again,
    together); `rebalanced` are wholly due but list a balance that changed since they were
    rendered (planned again, to ask for what is owed now)."""

    withdrawn: list[int] = field(default_factory=list)
    replanned: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)  # wholly due, but one of a customer's several
    rebalanced: list[int] = field(default_factory=list)  # wholly due, a balance changed since rendered
    readdressed: list[int] = field(default_factory=list)  # wholly due, the customer's addresses changed
    redated: list[int] = field(default_factory=list)  # lists an invoice whose offset is not due any more
    held: list[int] = field(default_factory=list)  # lists an invoice `store.quarantine` holds
    revoked: list[int] = field(default_factory=list)  # invitations that can no longer be accepted
    unwanted: list[int] = field(default_factory=list)  # automatic, of a company without auto_invite
    # outbox id -> (company, the pairs still due, those not): of the untried ones once taken
    pairs: dict[int, tuple[str, list[Pair], list[Pair]]] = field(default_factory=dict)
    tried: set[int] = field(default_factory=set)  # handed to the server before: ledger rows stay

    def reminders(self) -> list[int]:
        """The reminders it names, bucket by bucket (`REMINDER_REASONS`)."""
        return [outbox_id for name in REMINDER_REASONS for outbox_id in getattr(self, name)]


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """The dispatcher's `withdraw`, for the companies' settings: the call takes back the
    reminders no longer (wholly) due among those about to be claimed; `assess` only says which
    (`--dry-run`)."""

    imports_inactive: ImportsInactive
    timezone_of: Callable[[str], str | None] = lambda _company: None  # a company's time zone
    auto_invites: AutoInvites = lambda _company: True  # a company's `auto_invite`
    offsets_of: OffsetsOf = lambda _company: None  # a company's reminder offsets

    def __call__(self, connection: Connection, now: datetime, companies: Collection[str]) -> Verdict:
        """Take back what is stale among the automatic mail of `companies` (whose windows are
        open) and the manual invitations of any company, due at `now`."""
        today = self._today(now)
        verdict = assess(
            connection, now, companies, self.imports_inactive, today, self.auto_invites, self.offsets_of
        )
        return take_back(connection, verdict, now)

    def assess(self, connection: Connection, now: datetime | None = None) -> Verdict:
        today = self._today(now) if now else None
        return assess(
            connection, None, None, self.imports_inactive, today, self.auto_invites, self.offsets_of
        )

    def _today(self, now: datetime) -> TodayOf:
        def today(company: str) -> date | None:
            zone = self.timezone_of(company)
            return company_today(now, zone) if zone else None

        return today


def assess(
    connection: Connection,
    now: datetime | None,
    companies: Collection[str] | None,
    imports_inactive: ImportsInactive,
    today_of: TodayOf | None = None,
    auto_invites: AutoInvites | None = None,
    offsets_of: OffsetsOf | None = None,
) -> Verdict:
    """The queued automatic reminders (of `companies`, due at `now`; None: any) listing an
    invoice no longer remindable: to withdraw (none due), or to plan again (some due, never
    tried); and the invitations to drop (`_invitations`). Reads only."""
    verdict = Verdict()
    verdict.revoked, verdict.unwanted = stale_invitations(connection, now, companies, auto_invites)
    if companies is not None and not companies:
        return verdict
    customers: dict[int, str] = {}  # outbox id -> the customer its invoices still due are of
    changed: set[int] = set()  # listing a due invoice whose balance is not the one rendered
    addressed: dict[int, str] = {}  # outbox id -> its recipients
    early: set[int] = set()  # listing a remindable invoice whose offset is not due today
    held: set[int] = set()  # listing an invoice the quarantine holds (`store.quarantine`)
    unplanned: dict[str, set[str]] = {}  # company -> customers planning would mail today
    if companies is not None:  # read before the waiting reminders (`_unplanned`)
        _unplanned(connection, now, companies, unplanned, (imports_inactive, today_of, offsets_of))
    for row in connection.execute(_waiting(now, companies)).mappings():
        _, due_now, not_due = verdict.pairs.setdefault(row["outbox_id"], (row["company_id"], [], []))
        pair = (row["invoice_ref"], row["offset_days"])
        if _still_due(row, imports_inactive) and _offset_sent(row, offsets_of):
            due_now.append(pair)
            customers.setdefault(row["outbox_id"], row["customer_ref"])
            if row["planned_balance"] is not None and row["planned_balance"] != row["balance"]:
                changed.add(row["outbox_id"])
            if not _offset_due(row, today_of):
                early.add(row["outbox_id"])
            if row["held"]:
                held.add(row["outbox_id"])
        else:
            not_due.append(pair)
        if row["tried"]:
            verdict.tried.add(row["outbox_id"])
        addressed[row["outbox_id"]] = row["recipient"]
    moved = _readdressed(connection, verdict, customers, addressed)
    for outbox_id, (_, due_now, not_due) in sorted(verdict.pairs.items()):
        if due_now and outbox_id in verdict.tried:
            continue  # perhaps on its way to some already: it goes as it is
        if not_due:
            (verdict.replanned if due_now else verdict.withdrawn).append(outbox_id)
        elif outbox_id in held:  # its stored balance may be one the books no longer hold
            verdict.held.append(outbox_id)
        elif outbox_id in early:
            verdict.redated.append(outbox_id)
        elif outbox_id in changed:
            verdict.rebalanced.append(outbox_id)
        elif outbox_id in moved:
            verdict.readdressed.append(outbox_id)
    waiting = {company for company, _, _ in verdict.pairs.values()}  # a dry run's are read now
    _unplanned(connection, now, waiting, unplanned, (imports_inactive, today_of, offsets_of))
    verdict.merged = _several(verdict, customers, unplanned)
    return verdict


def _readdressed(
    connection: Connection, verdict: Verdict, customers: Mapping[int, str], addressed: Mapping[int, str]
) -> set[int]:
    """The untried reminders with invoices still due whose recipients are not the customer's
    valid addresses in the books now (what planning would address them to)."""
    refs: dict[str, set[str]] = {}
    for outbox_id, customer in customers.items():
        if outbox_id not in verdict.tried:
            refs.setdefault(verdict.pairs[outbox_id][0], set()).add(customer)
    now_to: dict[tuple[str, str], set[str]] = {}
    for company, wanted in refs.items():  # (reminder_recipients bounds its own IN lists)
        found = reminder_recipients(connection, company, sorted(wanted))
        now_to.update({(company, ref): set(emails) for ref, emails in found.items()})
    return {
        outbox_id
        for outbox_id, customer in customers.items()
        if outbox_id not in verdict.tried
        and {a.strip() for a in addressed[outbox_id].split(",")}
        != now_to.get((verdict.pairs[outbox_id][0], customer), set())
    }


def _unplanned(
    connection: Connection,
    now: datetime | None,
    companies: Collection[str],
    into: dict[str, set[str]],
    settings: tuple[ImportsInactive, TodayOf | None, OffsetsOf | None],
) -> None:
    """Add to `into` each of `companies` (not in it yet) with its customers that have
    reminders due today not on record, or only in a message queued to go after `now`:
    planning would mail them another email, or that message would follow a moment later.

    Read before the waiting reminders: a planner committing a customer's next reminder in
    between then shows as a second waiting reminder of that customer (taken back with the
    first), not as nothing left to plan beside a first that goes alone."""
    imports_inactive, today_of, offsets_of = settings
    for company in sorted(set(companies) - set(into)):
        today = today_of(company) if today_of is not None else None
        offsets = offsets_of(company) if offsets_of is not None else None
        if today is None or offsets is None:
            into[company] = set()
            continue
        inactive = imports_inactive(company)
        plan = plan_due(connection, company, offsets, today, import_inactive=inactive, waiting_after=now)
        into[company] = {reminder.customer_ref for reminder in plan.reminders}


def _several(verdict: Verdict, customers: Mapping[int, str], unplanned: Mapping[str, set[str]]) -> list[int]:
    """The wholly due reminders that would reach their customer beside another one.

    Each planning enqueues one email per customer; reminders planned on Saturday and on
    Sunday both wait for Monday's opening, and would go out as two emails at once. SPEC:
    all reminders due for one customer at the same time go out as one email. So when a
    customer has several untried reminders about to go, or one and more due that no
    planning has enqueued yet (`unplanned`), all are taken back and their pairs planned again together
    (those partly due are taken back anyway). One already tried goes as it is: it may have
    reached someone.
    """
    untried: dict[tuple[str, str], list[int]] = {}
    for outbox_id, customer in customers.items():
        if outbox_id not in verdict.tried:
            untried.setdefault((verdict.pairs[outbox_id][0], customer), []).append(outbox_id)
    again = {
        *verdict.replanned,
        *verdict.rebalanced,
        *verdict.readdressed,
        *verdict.redated,
        *verdict.held,
    }  # taken back anyway
    several = (ids for (company, ref), ids in untried.items() if len(ids) > 1 or ref in unplanned[company])
    return sorted(i for ids in several for i in ids if i not in again)


def take_back(connection: Connection, verdict: Verdict, now: datetime) -> Verdict:
    """Drop the reminders `verdict` names that are still queued and still as tried or untried
    as assessed; change the ledger rows of the untried ones (module docstring); invitations
    dropped are superseded at `now`. What was taken back; the caller commits."""
    taken = Verdict()
    named_ids = set(verdict.reminders())
    free = _locked(connection, sorted(named_ids | set(verdict.revoked) | set(verdict.unwanted)))
    for named, reason, bucket in (
        (verdict.revoked, REVOKED, taken.revoked),
        (verdict.unwanted, UNWANTED, taken.unwanted),
    ):
        ids = [i for i in named if i in free]
        for start in range(0, len(ids), CHUNK):
            bucket += drop_invitations(connection, ids[start : start + CHUNK], reason, now)
    for name, reason in REMINDER_REASONS.items():
        named, bucket = getattr(verdict, name), getattr(taken, name)
        ids = [i for i in named if i in free]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            bucket += _drop(connection, [i for i in chunk if i not in verdict.tried], reason, tried=False)
            bucket += _drop(connection, [i for i in chunk if i in verdict.tried], reason, tried=True)
        bucket.sort()
    dropped = taken.reminders()
    taken.tried = verdict.tried & set(dropped)
    untried = [i for i in dropped if i not in taken.tried]
    taken.pairs = {outbox_id: verdict.pairs[outbox_id] for outbox_id in untried}  # ledger rows change
    skipped = [_key(company, pair) for company, _, not_due in taken.pairs.values() for pair in not_due]
    again = [_key(company, pair) for company, due_now, _ in taken.pairs.values() for pair in due_now]
    if skipped:
        connection.execute(update(LEDGER).where(_pair()).values(status="skipped"), skipped)
    if again:
        connection.execute(delete(LEDGER).where(_pair()), again)
    return taken


def _locked(connection: Connection, ids: list[int]) -> set[int]:
    """Those of `ids` still queued, locked for this transaction in id order, skipping the rows
    another dispatcher holds (it is taking them back or claiming them). On PostgreSQL: the
    drops lock rows by verdict (withdrawn, then planned again), and two dispatchers whose
    readings straddled a payment classify the same rows differently, so without one order
    they locked them in opposite orders and deadlocked. SQLite has a single writer."""
    if connection.dialect.name != "postgresql":
        return set(ids)
    c = OUTBOX.c
    free: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        rows = (
            select(c.id)
            .where(c.id.in_(ids[start : start + CHUNK]), c.status == "queued")
            .order_by(c.id)
            .with_for_update(skip_locked=True)
        )
        free.update(connection.execute(rows).scalars())
    return free


def _drop(connection: Connection, ids: list[int], reason: str, *, tried: bool) -> list[int]:
    """Drop those of `ids` still queued (not claimed meanwhile) and still (un)tried as assessed."""
    if not ids:
        return []
    c = OUTBOX.c
    attempted = _tried() if tried else ~_tried()
    dropped = connection.execute(
        update(OUTBOX)
        .where(c.id.in_(ids), c.status == "queued", attempted)
        .values(status="dropped", last_error=reason)
        .returning(c.id)
    )
    return sorted(dropped.scalars().all())


def _tried() -> ColumnElement[bool]:
    """Handed to the server at least once: an attempt is counted, or the row was claimed and
    not handed back (`mail resend` sets attempts back to 0 but keeps who claimed it)."""
    c = OUTBOX.c
    return or_(c.attempts > 0, c.claimed_at.is_not(None))


def _pair() -> Any:
    l = LEDGER.c  # noqa: E741
    return and_(
        l.company_id == bindparam("b_company"),
        l.invoice_ref == bindparam("b_ref"),
        l.offset_days == bindparam("b_offset"),
        l.status == "sent",
    )


def _key(company_id: str, pair: Pair) -> dict[str, Any]:
    return {"b_company": company_id, "b_ref": pair[0], "b_offset": pair[1]}


def _waiting(now: datetime | None, companies: Collection[str] | None) -> Select:
    """Each (reminder about to be claimed, (invoice, offset) it lists): the invoice's and its
    customer's columns (NULL when no longer stored). A reminder without ledger pairs lists
    nothing known: it is left alone."""
    c, i, k = OUTBOX.c, INVOICES.c, CUSTOMERS.c
    listed = LEDGER.join(OUTBOX, (LEDGER.c.outbox_id == c.id) & (LEDGER.c.company_id == c.company_id))
    with_invoice = listed.outerjoin(
        INVOICES, (i.company_id == LEDGER.c.company_id) & (i.ref == LEDGER.c.invoice_ref)
    ).outerjoin(CUSTOMERS, (k.company_id == i.company_id) & (k.ref == i.customer_ref))
    return (
        select(
            c.id.label("outbox_id"),
            c.company_id,
            c.recipient,
            _tried().label("tried"),
            LEDGER.c.invoice_ref,
            LEDGER.c.offset_days,
            LEDGER.c.balance.label("planned_balance"),
            i.ref,
            *(column for column in INVOICES.c if column.name in FACTS),
            k.active.label("customer_active"),
            k.deleted.label("customer_deleted"),
            k.reminders_paused,
            holds(LEDGER.c.company_id, i.ref, i.customer_ref).label("held"),
        )
        .select_from(with_invoice)
        .where(
            due(now) if now is not None else c.status == "queued",
            c.kind == "reminder",
            c.automatic,
            c.company_id.in_(list(companies)) if companies is not None else true(),
            LEDGER.c.status == "sent",
        )
    )


def _offset_sent(row: Mapping[str, Any], offsets_of: OffsetsOf | None) -> bool:
    """Whether the company still sends reminders at the pair's offset (True when unknown)."""
    offsets = offsets_of(row["company_id"]) if offsets_of is not None else None
    return offsets is None or row["offset_days"] in offsets


def _offset_due(row: Mapping[str, Any], today_of: TodayOf | None) -> bool:
    """Whether the pair's offset is still due on the company's today (its due date may have
    moved since planning); True when that day or the due date is unknown."""
    today = today_of(row["company_id"]) if today_of is not None else None
    if today is None or row["due_date"] is None:
        return True
    return (today - row["due_date"]).days >= row["offset_days"]


def _still_due(row: Mapping[str, Any], imports_inactive: ImportsInactive) -> bool:
    if row["ref"] is None:  # the invoice is no longer stored
        return False
    invoice = invoice_facts(row)
    customer = (
        None
        if row["customer_active"] is None
        else CustomerFacts(
            invoice.customer_ref, row["customer_active"], row["customer_deleted"], row["reminders_paused"]
        )
    )
    return remindable(invoice, customer, imports_inactive(row["company_id"]))
