"""`arsync reminders plan`: enqueue the reminders due now, at most once per (invoice, offset).

Per customer, one transaction records the ledger rows (primary key = the at-most-once
guarantee, across workers and restarts) and enqueues the one email listing its invoices.
Automatic mail: the dispatcher holds it until the company's delivery window opens.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailer.bulk import render_reminders
from mailer.mails import ReminderLine, ReminderMail
from mailer.outbox import enqueue_rendered
from mailer.statement_doc import load_document
from portal_rules.balances import company_today
from portal_rules.reminders import CustomerReminder, ReminderPlan, due_reminders
from portal_rules.types import CustomerFacts, InvoiceFacts
from portal_rules.windows import next_opening
from store.facts import invoice_facts
from store.portal import customer_names
from store.tables import Contact, Customer, Invoice, ReminderLedger
from sync.config import CompanyConfig, Config
from sync.mail import sender
from sync.settings import company_policy

log = structlog.get_logger("arsync.reminders")
LEDGER = ReminderLedger.__table__
BATCH = 500


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
    dry_run: bool = False


def plan_reminders(
    engine: Engine, config: Config, company: CompanyConfig, *, now: datetime, dry_run: bool = False
) -> ReminderReport:
    policy = company_policy(company)
    today = company_today(now, company.timezone)
    report = ReminderReport(company.id, dry_run=dry_run)
    with engine.connect() as connection:
        plan = _plan(
            connection, company.id, policy.reminder_offsets_days, today, policy.import_inactive_customers
        )
        recipients = _recipients(connection, company.id, [r.customer_ref for r in plan.reminders])
        names = customer_names(connection, company.id, [r.customer_ref for r in plan.reminders])
    send_at = next_opening(policy.delivery_window, now)
    report.skipped = len(plan.skipped)
    for reminder in plan.reminders:
        to = recipients.get(reminder.customer_ref, ())
        if not to:
            report.no_recipient.append(reminder.customer_ref)
            continue
        report.planned.append(
            PlannedReminder(
                reminder.customer_ref,
                to,
                tuple((i.invoice.doc_number or i.invoice.ref, i.offset) for i in reminder.items),
                send_at,
            )
        )
    if dry_run:
        return report
    _record_skipped(engine, company.id, plan, now)
    from_ = sender(config, company)
    due = [r for r in plan.reminders if recipients.get(r.customer_ref)]
    mails = [
        (
            ReminderMail(
                names.get(r.customer_ref, ""),
                recipients[r.customer_ref],
                company.portal_url,
                tuple(_line(item.invoice) for item in r.items),
                today,
                _statement(engine, company, r.customer_ref, today),
            ),
            _key(r),
        )
        for r in due
    ]
    mails = list(zip(due, render_reminders(from_, mails, now=now), strict=True))
    for start in range(0, len(mails), BATCH):
        _enqueue_batch(engine, company.id, mails[start : start + BATCH], now)
    return report


def _statement(engine: Engine, company: CompanyConfig, customer_ref: str, today: date):
    """The customer's statement to attach, when the company asks for it."""
    if not company.attach_statement:
        return None
    return load_document(engine, company.id, company.name, customer_ref, day=today)


def _plan(connection: Connection, company_id: str, offsets, today, import_inactive: bool) -> ReminderPlan:
    horizon = today - timedelta(days=min(offsets))  # due dates after this have nothing due yet
    rows = (
        connection.execute(
            select(Invoice.__table__).where(
                Invoice.company_id == company_id,
                Invoice.visible.is_(True),
                Invoice.balance > 0,
                Invoice.due_date <= horizon,
            )
        )
        .mappings()
        .all()
    )
    invoices = [invoice_facts(r) for r in rows]
    refs = sorted({i.customer_ref for i in invoices})
    customers = (
        {
            r.ref: CustomerFacts(r.ref, r.active, r.deleted, r.reminders_paused)
            for r in connection.execute(
                select(Customer.ref, Customer.active, Customer.deleted, Customer.reminders_paused).where(
                    Customer.company_id == company_id, Customer.ref.in_(refs)
                )
            )
        }
        if refs
        else {}
    )
    ledger = select(ReminderLedger.invoice_ref, ReminderLedger.offset_days).where(
        ReminderLedger.company_id == company_id, ReminderLedger.invoice_ref.in_([i.ref for i in invoices])
    )
    done = {(ref, offset) for ref, offset in connection.execute(ledger)} if invoices else set()
    return due_reminders(invoices, customers, offsets, done, today, import_inactive=import_inactive)


def _recipients(connection: Connection, company_id: str, refs: list[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = defaultdict(list)
    if refs:
        for ref, email in connection.execute(
            select(Contact.customer_ref, Contact.email)
            .where(
                Contact.company_id == company_id,
                Contact.customer_ref.in_(refs),
                Contact.valid.is_(True),
                Contact.in_source.is_(True),
            )
            .order_by(Contact.customer_ref, Contact.position)
        ):
            out[ref].append(email)
    return {ref: tuple(emails) for ref, emails in out.items()}


def _line(invoice: InvoiceFacts) -> ReminderLine:
    return ReminderLine(
        invoice.doc_number or invoice.ref, invoice.due_date, invoice.balance, invoice.currency
    )


def _key(reminder: CustomerReminder) -> str:
    items = ",".join(f"{item.invoice.ref}@{item.offset}" for item in reminder.items)
    return f"reminder:{reminder.customer_ref}:{items}"


def _record_skipped(engine: Engine, company_id: str, plan: ReminderPlan, now: datetime) -> None:
    rows = [
        {
            "company_id": company_id,
            "invoice_ref": ref,
            "offset_days": offset,
            "status": "skipped",
            "recorded_at": now,
        }
        for ref, offset in plan.skipped
    ]
    for start in range(0, len(rows), BATCH):
        upsert_ignore(engine, rows[start : start + BATCH])


def upsert_ignore(engine: Engine, rows: list[dict]) -> None:
    """Insert ledger rows, leaving alone any another worker recorded first."""
    if not rows:
        return
    with engine.begin() as connection:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(dialect.insert(LEDGER).on_conflict_do_nothing(), rows)


def _enqueue_batch(engine: Engine, company_id: str, mails: list, now: datetime) -> None:
    """Ledger rows and outbox messages of many customers in one transaction.

    The ledger's primary key is the at-most-once guarantee: if another worker planned one of
    these customers meanwhile, the batch is rolled back and retried customer by customer.
    """
    try:
        with engine.begin() as connection:
            for reminder, message in mails:
                _enqueue(connection, company_id, reminder, message, now)
    except IntegrityError:
        for reminder, message in mails:
            try:
                with engine.begin() as connection:
                    _enqueue(connection, company_id, reminder, message, now)
            except IntegrityError:
                log.info("reminders.already_planned", company=company_id, customer=reminder.customer_ref)


def _enqueue(
    connection: Connection, company_id: str, reminder: CustomerReminder, message, now: datetime
) -> None:
    connection.execute(
        insert(LEDGER),
        [
            {
                "company_id": company_id,
                "invoice_ref": item.invoice.ref,
                "offset_days": item.offset,
                "status": "sent",
                "recorded_at": now,
            }
            for item in reminder.items
        ],
    )
    enqueue_rendered(
        Session(bind=connection),
        message,
        company_id=company_id,
        kind="reminder",
        automatic=True,
        dedupe_key=_key(reminder),
        not_before=now,
    )
