"""`arsync reminders plan`: enqueue the reminders due now, at most once per (invoice, offset).

Per customer, one transaction records the ledger rows (primary key = the at-most-once
guarantee, across workers and restarts) and enqueues the one email listing its invoices.
Automatic mail: the dispatcher holds it until the company's delivery window opens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mailer.bulk import render_reminders
from mailer.environment import check_templates, template_failure
from mailer.mails import ReminderLine, ReminderMail, Sender
from mailer.outbox import Rendered, enqueue_keyed, outbox_row
from mailer.statement_doc import load_document
from portal_rules.balances import company_today
from portal_rules.eligibility import plan_includes_portal
from portal_rules.reminders import CustomerReminder
from portal_rules.types import InvoiceFacts
from portal_rules.windows import next_opening
from store.ledger import (
    BATCH,
    SentPairs,
    plan_due,
    record_sent,
    record_skipped,
    reminder_recipients,
)
from store.portal_customers import customer_names
from store.quarantine import held_counts
from sync.config import CompanyConfig, Config
from sync.mail import sender
from sync.settings import company_policy

log = structlog.get_logger("arsync.reminders")


@dataclass
class PlannedReminder:
    customer_ref: str
    recipients: tuple[str, ...]
    invoices: tuple[tuple[str, int], ...]  # (doc number or ref, offset)
    send_at: datetime


@dataclass
class ReminderReport:
    company: str
    planned: list[PlannedReminder] = field(default_factory=list)
    skipped: int = 0  # (invoice, offset) recorded as skipped (catch-up)
    no_recipient: list[str] = field(default_factory=list)  # customers without a valid email
    held: dict[str, int] = field(default_factory=dict)  # invoices, customers quarantined: not planned
    dry_run: bool = False


def plan_reminders(
    engine: Engine, config: Config, company: CompanyConfig, *, now: datetime, dry_run: bool = False
) -> ReminderReport:
    """Enqueue (or, `dry_run`, list) the company's reminders due at `now`.

    `report.planned` holds only the reminders this call enqueued: on PostgreSQL several
    planners may race, and a customer another one recorded first is theirs to report.
    Raises `TemplateProblem` when the company's templates cannot be used; nothing is then
    recorded or queued for it.
    """
    check_templates(company.template_dir, "reminder")
    policy = company_policy(company)
    today = company_today(now, company.timezone)
    report = ReminderReport(company.id, dry_run=dry_run)
    with engine.connect() as connection:
        plan = plan_due(
            connection,
            company.id,
            policy.reminder_offsets_days,
            today,
            import_inactive=policy.import_inactive_customers,
        )
        recipients = reminder_recipients(connection, company.id, [r.customer_ref for r in plan.reminders])
        names = customer_names(connection, company.id, [r.customer_ref for r in plan.reminders])
        report.held = held_counts(connection, company.id)
    report.skipped = len(plan.skipped)
    report.no_recipient = [r.customer_ref for r in plan.reminders if not recipients.get(r.customer_ref)]
    due = [r for r in plan.reminders if recipients.get(r.customer_ref)]
    send_at = next_opening(policy.delivery_window, now)
    planned = [_planned(r, recipients[r.customer_ref], send_at) for r in due]
    if dry_run:
        report.planned = planned
        return report
    mails = [(_mail(engine, company, r, names, recipients, today), _key(r, now)) for r in due]
    messages = _render(sender(config, company), mails, now)  # before any write: a failure leaves none
    record_skipped(engine, company.id, plan.skipped, now)
    enqueued: set[str] = set()
    pairs = list(zip(due, messages, strict=True))
    for start in range(0, len(pairs), BATCH):
        enqueued |= _enqueue_batch(engine, company.id, pairs[start : start + BATCH], now)
    report.planned = [p for p in planned if p.customer_ref in enqueued]
    return report


def _planned(reminder: CustomerReminder, to: tuple[str, ...], send_at: datetime) -> PlannedReminder:
    invoices = tuple((i.invoice.doc_number or i.invoice.ref, i.offset) for i in reminder.items)
    return PlannedReminder(reminder.customer_ref, to, invoices, send_at)


def _mail(
    engine: Engine,
    company: CompanyConfig,
    reminder: CustomerReminder,
    names: dict[str, str],
    recipients: dict[str, tuple[str, ...]],
    today: date,
) -> ReminderMail:
    ref = reminder.customer_ref
    return ReminderMail(
        names.get(ref, ""),
        recipients[ref],
        _portal_link(company),
        tuple(_line(item.invoice) for item in reminder.items),
        today,
        _statement(engine, company, ref, today),
    )


def _portal_link(company: CompanyConfig) -> str:
    """The portal a reminder leads to; "" (no button, no portal sentence) when the company's
    plan has no portal (`basic`, SPEC 2 "Portal eligibility"): its customers cannot sign in,
    so a link there could only fail. Reminders themselves are sent on every plan."""
    return company.portal_url if plan_includes_portal(company.plan) else ""


def _render(from_: Sender, mails: list[tuple[ReminderMail, str]], now: datetime) -> list[Rendered]:
    """The rendered messages; a template failing while rendering (an unknown name, or any error
    its expressions raise) becomes a `TemplateProblem` naming its file and line, as a syntax
    error found beforehand does."""
    try:
        return render_reminders(from_, mails, now=now)
    except Exception as exc:
        problem = template_failure(exc)
        if problem is None:
            raise
        raise problem from exc


def _statement(engine: Engine, company: CompanyConfig, customer_ref: str, today: date):
    """The customer's statement to attach, when the company asks for it."""
    if not company.attach_statement:
        return None
    return load_document(engine, company.id, company.name, customer_ref, day=today)


def _line(invoice: InvoiceFacts) -> ReminderLine:
    return ReminderLine(
        invoice.doc_number or invoice.ref, invoice.due_date, invoice.balance, invoice.currency
    )


def _key(reminder: CustomerReminder, now: datetime) -> str:
    """The reminder's dedupe key, which its Message-ID is derived from: the customer, and a
    digest of what it lists (pairs and balances) and when it was planned.

    A digest: a customer's list of invoices can be longer than the key's 255 characters
    (PostgreSQL refused the whole company's planning). What and when: pairs taken back at
    dispatch (`mailer.withdraw`) are planned again, perhaps as the same list, in a new
    message, which must not collide with the dropped one's key or Message-ID.
    """
    items = ",".join(f"{i.invoice.ref}@{i.offset}={i.invoice.balance}" for i in reminder.items)
    digest = hashlib.sha256(f"{items}\0{now.isoformat()}".encode()).hexdigest()[:32]
    return f"reminder:{reminder.customer_ref}:{digest}"


class AlreadyPlanned(Exception):
    """The reminder's message is in the outbox already: its transaction must be rolled back,
    or its pairs would be recorded sent by a message that does not list them."""


def _enqueue_batch(engine: Engine, company_id: str, mails: list, now: datetime) -> set[str]:
    """Ledger rows and outbox messages of many customers in one transaction; the refs of the
    customers actually enqueued.

    The ledger's primary key is the at-most-once guarantee: if another worker planned one of
    these customers meanwhile, the batch is rolled back and retried customer by customer.
    """
    keys = [_key(reminder, now) for reminder, _ in mails]
    rows = [_outbox_row(company_id, message, key, now) for (_, message), key in zip(mails, keys, strict=True)]
    try:
        with engine.begin() as connection:
            ids = enqueue_keyed(connection, rows)
            if len(ids) < len(rows):  # some are queued already (another planner's): one by one
                raise AlreadyPlanned(company_id)
            sent = [_sent(reminder, ids[key]) for (reminder, _), key in zip(mails, keys, strict=True)]
            record_sent(connection, company_id, sent, now)
    except (IntegrityError, AlreadyPlanned):
        return _enqueue_each(engine, company_id, mails, now)
    return {reminder.customer_ref for reminder, _ in mails}


def _enqueue_each(engine: Engine, company_id: str, mails: list, now: datetime) -> set[str]:
    """One transaction per customer; those another worker planned first are left out."""
    enqueued = set()
    for reminder, message in mails:
        try:
            with engine.begin() as connection:
                _enqueue(connection, company_id, reminder, message, now)
        except (IntegrityError, AlreadyPlanned):
            log.info("reminders.already_planned", company=company_id, customer=reminder.customer_ref)
        else:
            enqueued.add(reminder.customer_ref)
    return enqueued


def _enqueue(
    connection: Connection, company_id: str, reminder: CustomerReminder, message: Rendered, now: datetime
) -> None:
    row = _outbox_row(company_id, message, _key(reminder, now), now)
    outbox_id = enqueue_keyed(connection, [row]).get(row["dedupe_key"])
    if outbox_id is None:  # the very same reminder is queued (another planner's): it holds the pairs
        raise AlreadyPlanned(reminder.customer_ref)
    # the ledger rows name their message (what the dispatcher withdraws them with); if another
    # worker recorded one of the pairs first, this raises and the message goes with the rollback
    record_sent(connection, company_id, [_sent(reminder, outbox_id)], now)


def _outbox_row(company_id: str, message: Rendered, key: str, now: datetime) -> dict:
    return outbox_row(
        message, company_id=company_id, kind="reminder", automatic=True, dedupe_key=key, not_before=now
    )


def _sent(reminder: CustomerReminder, outbox_id: int) -> SentPairs:
    """The ledger rows of the reminder's message: its pairs, and the balances it lists."""
    pairs = [(item.invoice.ref, item.offset) for item in reminder.items]
    balances = {item.invoice.ref: item.invoice.balance for item in reminder.items}
    return SentPairs(outbox_id, pairs, balances)
