"""Automatic reminders taken back before sending: invoices they list stopped being due while
they waited, or another reminder would reach the same customer at the same time.

A reminder planned outside the delivery window waits in the outbox for the next opening
(Saturday's reminder goes out on Monday). An invoice it lists may meanwhile have stopped
being one to remind of (paid, voided, deleted, no longer shown in the portal, or the customer
was paused or left the portal): sending it as rendered would ask for money no longer owed.
So may the reminder's offset: the company took it out of `reminder_offsets_days` (or emptied
the list, to send no reminders) while it waited.
Just before the dispatcher claims automatic mail, such a reminder is `dropped` with the
reason, in one transaction with its ledger rows (`mailer.take_back`): its pairs leave the
ledger, never sent: those still due are planned again, the others are due again should their
invoice be owed again (a refund reopens it).

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

This module judges (`assess`, into a `mailer.take_back.Verdict`) and holds the dispatcher's
`Withdrawal`, which judges and takes back in one go.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, select, true

from mailer.claim import due
from mailer.outbox import OUTBOX
from mailer.take_back import LEDGER, Verdict, take_back, tried_before
from mailer.uninvite import AutoInvites, stale_invitations
from portal_rules.balances import company_today
from portal_rules.reminders import remindable
from portal_rules.types import CustomerFacts
from store.facts import invoice_facts
from store.ledger import plan_due, reminder_recipients
from store.quarantine import holds
from store.tables import Customer, Invoice

INVOICES, CUSTOMERS = Invoice.__table__, Customer.__table__
FACTS = {
    "customer_ref", "balance", "total", "due_date", "doc_number", "issue_date", "currency",
    "source_sent", "sent_override", "voided", "deleted", "draft",
}  # fmt: skip  # the invoice columns `invoice_facts` reads (besides its ref)

TodayOf = Callable[[str], date | None]
"""A company's date now (None: unknown, the offsets' dates are not checked)."""
ImportsInactive = Callable[[str], bool]
"""Whether a company imports its inactive customers into the portal (they may be reminded)."""
OffsetsOf = Callable[[str], Sequence[int] | None]
"""A company's `reminder_offsets_days` (None: unknown, what else is due is not checked)."""


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
    tried); and the invitations to drop (`mailer.uninvite.stale_invitations`). Reads only."""
    verdict = Verdict()
    verdict.revoked, verdict.unwanted = stale_invitations(connection, now, companies, auto_invites)
    if companies is not None and not companies:
        return verdict
    # outbox id -> the customers its invoices still due are of (one, unless the books moved an
    # invoice to another customer while it waited)
    customers: dict[int, set[str]] = {}
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
            customers.setdefault(row["outbox_id"], set()).add(row["customer_ref"])
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
    connection: Connection,
    verdict: Verdict,
    customers: Mapping[int, set[str]],
    addressed: Mapping[int, str],
) -> set[int]:
    """The untried reminders with invoices still due whose recipients are not the valid
    addresses in the books now (what planning would address them to) of each customer those
    invoices are of: an invoice billed to another customer meanwhile goes to that one."""
    refs: dict[str, set[str]] = {}
    for outbox_id, of in customers.items():
        if outbox_id not in verdict.tried:
            refs.setdefault(verdict.pairs[outbox_id][0], set()).update(of)
    now_to: dict[tuple[str, str], set[str]] = {}
    for company, wanted in refs.items():  # (reminder_recipients bounds its own IN lists)
        found = reminder_recipients(connection, company, sorted(wanted))
        now_to.update({(company, ref): set(emails) for ref, emails in found.items()})
    return {
        outbox_id
        for outbox_id, of in customers.items()
        if outbox_id not in verdict.tried
        and any(
            {a.strip() for a in addressed[outbox_id].split(",")}
            != now_to.get((verdict.pairs[outbox_id][0], customer), set())
            for customer in of
        )
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


def _several(
    verdict: Verdict, customers: Mapping[int, set[str]], unplanned: Mapping[str, set[str]]
) -> list[int]:
    """The wholly due reminders that would reach their customer beside another one.

    Each planning enqueues one email per customer; reminders planned on Saturday and on
    Sunday both wait for Monday's opening, and would go out as two emails at once. SPEC:
    all reminders due for one customer at the same time go out as one email. So when a
    customer has several untried reminders about to go, or one and more due that no
    planning has enqueued yet (`unplanned`), all are taken back and their pairs planned again together
    (those partly due are taken back anyway). One already tried goes as it is: it may have
    reached someone. A reminder listing invoices of several customers (the books moved one)
    counts as each one's: taken back to be planned again, it must not leave a customer's
    other reminder to go alone beside it.
    """
    untried: dict[tuple[str, str], list[int]] = {}
    for outbox_id, of in customers.items():
        if outbox_id not in verdict.tried:
            for customer in of:
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
            tried_before().label("tried"),
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
