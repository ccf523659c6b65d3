"""What reminder mail SPEC section 2 allows and requires, from the books as last synced and
the admin's local switches; no arsync code (as `portal_oracle`, whose visibility it shares).

The oracle does not predict every email: where the SPEC leaves a choice open (a reminder
waiting for the window whose invoice was paid meanwhile may go or be dropped; its balance may
be the planned one or today's) it accepts each. What it holds arsync to:

- a reminder for (invoice, offset) is due once today >= due date + offset, the invoice visible
  with a balance, its customer active and not paused; when several offsets are due at once
  only the latest is sent: every invoice an email lists must have been due at some planning
  at or before the email left, with the due date, balance and customer the store showed then;
- (invoice, offset) at most once ever: the emails listing one invoice need as many distinct
  offsets, each the latest due at a planning before its email (a matching);
- one email per customer for the reminders going at the same time, listing every invoice
  of that customer due at the planning that enqueued it (where nothing SPEC leaves open
  happened since);
- sent to the customer's valid addresses, and never showing a customer an invoice the books
  now bill to another;
- automatic mail only inside a window (company time, overnight windows belong to the day
  they opened);
- once two worker ticks (plan, then dispatch) ran inside a window with nothing changed between
  them, an invoice still remindable got an email after its latest due offset first came due,
  unless it stopped being remindable since then, or the settings were edited since then
  (SPEC is silent on a reminder whose invoice stopped being due, or whose offset was taken
  out of the settings, while it waited; arsync drops it and counts that offset done), or that
  offset was skipped before (a due date moved later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice
from tests.properties.portal_oracle import _emails, _shown_customer

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# SPEC 2 "syntactically invalid addresses are never mailed": local@domain.tld, nothing odd
VALID = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}")


@dataclass(frozen=True)
class Settings:
    """The company settings a seed draws."""

    offsets: tuple[int, ...]
    days: frozenset[str]
    from_hour: int
    to_hour: int
    timezone: str

    def today(self, at: datetime) -> date:
        return at.astimezone(ZoneInfo(self.timezone)).date()

    def open(self, at: datetime) -> bool:
        """SPEC 2 delivery windows: local hours `from`..`to` inclusive on a delivery day; when
        `from > to` the window runs overnight and belongs to the day it opened."""
        local = at.astimezone(ZoneInfo(self.timezone))
        day, hour = WEEKDAYS[local.weekday()], local.hour
        if self.from_hour <= self.to_hour:
            return day in self.days and self.from_hour <= hour <= self.to_hour
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        return (day in self.days and hour >= self.from_hour) or (
            yesterday in self.days and hour <= self.to_hour
        )


@dataclass(frozen=True)
class Shown:
    """One invoice a planning may remind of, as the store shows it."""

    invoice: str
    customer: str
    doc: str
    due: date
    balance: Decimal
    recipients: frozenset[str]


def remindable(books: SimCompany, paused: set[str], overrides: dict[str, bool]) -> dict[str, Shown]:
    """Invoice id -> what the store shows of it, for each invoice a reminder may be due for:
    visible (sent, or marked sent locally; live; its customer imported and active) with a
    balance, its customer not paused. Only those whose customer has a valid address can be
    mailed; the others' earlier offsets are skipped all the same (SPEC 2 catch-up)."""
    out = {}
    for invoice in books.invoices.values():
        customer = books.customers.get(invoice.customer_id)
        if customer is None or customer.id in paused or invoice.balance <= 0:
            continue
        if not _shown_customer(books, customer, False) or not _visible(books, invoice, overrides):
            continue
        recipients = _valid(books, customer)
        out[invoice.id] = Shown(
            invoice.id, customer.id, invoice.doc_number, invoice.due_date, invoice.balance, recipients
        )
    return out


def _visible(books: SimCompany, invoice: SimInvoice, overrides: dict[str, bool]) -> bool:
    live = invoice.status == "open" and invoice.type == "ACCREC"
    sent = invoice.email_sent or (books.kind == "quickbooks" and invoice.printed)
    return live and overrides.get(invoice.id, sent)


def _valid(books: SimCompany, customer: SimCustomer) -> frozenset[str]:
    return frozenset(email for email in _emails(books, customer) if VALID.fullmatch(email))


@dataclass(frozen=True)
class Line:
    """One invoice as an email lists it."""

    doc: str
    due: date
    balance: Decimal


@dataclass(frozen=True)
class Mail:
    """One message the SMTP server accepted, at the replayed time of the dispatch that sent it."""

    at: datetime
    recipients: frozenset[str]
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Candidate:
    """At planning `at`, `offset` was the latest due offset of `shown.invoice`."""

    at: datetime
    offset: int
    shown: Shown


@dataclass
class Oracle:
    settings: Settings
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)
    skipped: dict[str, set[int]] = field(default_factory=dict)  # due but not the latest at a planning
    gone: dict[str, list[datetime]] = field(default_factory=dict)  # seen not remindable at these times
    receipts: dict[str, list[tuple[datetime, frozenset[int]]]] = field(default_factory=dict)
    shown: dict[str, Shown] = field(default_factory=dict)  # the store's view now
    mails: int = 0
    excused: int = 0  # liveness exemptions used (a reminder's invoice stopped being due meanwhile)
    reconfigured: datetime = datetime.min.replace(tzinfo=UTC)  # the settings were last edited

    def observe(self, at: datetime, shown: dict[str, Shown]) -> None:
        """The store's view after a sync or a local switch."""
        for invoice in set(self.shown) - set(shown):
            self.gone.setdefault(invoice, []).append(at)
        self.shown = shown

    def due_offsets(self, shown: Shown, at: datetime) -> list[int]:
        late = (self.settings.today(at) - shown.due).days
        return sorted(o for o in self.settings.offsets if late >= o)

    def planned(self, at: datetime) -> None:
        """A planning ran at `at` over the current view."""
        for shown in self.shown.values():
            due = self.due_offsets(shown, at)
            self.skipped.setdefault(shown.invoice, set()).update(due[:-1])
            if due and shown.recipients:
                self.candidates.setdefault(shown.invoice, []).append(Candidate(at, due[-1], shown))

    def received(self, mails: list[Mail], docs: dict[str, str]) -> list[str]:
        """Check the emails one dispatch (or one worker's ticks) handed over; `docs` maps
        document numbers to invoice ids. Returns the problems found."""
        problems, customers = [], {}
        for mail in mails:
            self.mails += 1
            listed = [line.doc for line in mail.lines]
            where = f"email at {mail.at.isoformat()} to {sorted(mail.recipients)} listing {listed}"
            if not self.settings.open(mail.at):
                problems.append(f"{where}: sent outside the delivery window")
            if not mail.lines or len({x.doc for x in mail.lines}) != len(mail.lines):
                problems.append(f"{where}: lists no invoice, or one twice")
            owners: list[set[str]] = []
            for line in mail.lines:
                found = self._line(mail, line, docs.get(line.doc), owners)
                if found:
                    problems.append(f"{where}: {line}: {found}")
            common = set.intersection(*owners) if owners else set()
            if owners and not common:
                problems.append(f"{where}: lists invoices of several customers {owners}")
            if len(common) == 1:  # (an invoice moved to another customer may leave it open)
                [owner] = common
                if owner in customers:
                    problems.append(f"{where}: a second email to customer {owner} at the same time")
                customers[owner] = mail
                problems += [f"{where}: leaves out {j}" for j in self._left_out(mail, owner, docs)]
        return problems

    def _left_out(self, mail: Mail, owner: str, docs: dict[str, str]) -> list[Shown]:
        """The customer's other invoices due at the planning that enqueued `mail` (the latest
        that found one of its invoices due) and not emailed since their offset came due,
        unchanged since then: SPEC 2, all reminders due for one customer at the same time go
        out as one email. Judged only where nothing happened that SPEC leaves open: an
        invoice changed or gone meanwhile, an offset skipped, the settings edited."""
        listed = {docs.get(line.doc) for line in mail.lines}
        planned = max(
            c.at
            for invoice in listed
            for c in self.candidates.get(invoice, [])
            if c.at <= mail.at and c.shown.doc in {line.doc for line in mail.lines}
        )
        missing = []
        for invoice, candidates in self.candidates.items():
            then = [c for c in candidates if c.at == planned and c.shown.customer == owner]
            if invoice in listed or not then or self.shown.get(invoice) != then[0].shown:
                continue
            offset = then[0].offset
            first = min(c.at for c in candidates if c.offset == offset)
            if (
                first < self.reconfigured
                or offset in self.skipped.get(invoice, set())
                or any(when > first for when in self.gone.get(invoice, []))
                or any(when >= first for when, _ in self.receipts.get(invoice, []))
            ):
                continue
            missing.append(then[0].shown)
        return missing

    def _line(self, mail: Mail, line: Line, invoice: str | None, owners: list[set[str]]) -> str:
        """Why the line may not be in `mail` ("" when it may), recording its receipt."""
        if invoice is None:
            return "no such invoice number"
        matching = [
            c
            for c in self.candidates.get(invoice, [])
            if c.at <= mail.at and (c.shown.due, c.shown.balance) == (line.due, line.balance)
        ]
        if not matching:
            return f"never due at a planning with this due date and balance ({self.candidates.get(invoice)})"
        addressed = {c.shown.recipients for c in matching}
        now = self.shown.get(invoice)
        if mail.recipients not in addressed and (now is None or mail.recipients != now.recipients):
            return f"recipients are not the customer's valid addresses ({addressed})"
        to = {c.shown.customer for c in matching if c.shown.recipients == mail.recipients}
        if now is not None and to and now.customer not in to and mail.recipients != now.recipients:
            return f"shown to customer {to}, though the books bill it to {now.customer} now"
        owners.append({c.shown.customer for c in matching})
        received = self.receipts.setdefault(invoice, [])
        received.append((mail.at, frozenset(c.offset for c in matching)))
        if not _distinct_offsets([offsets for _, offsets in received]):
            return f"sent more often than offsets came due: {received}"
        return ""

    def unsent(self, at: datetime) -> list[str]:
        """After two worker ticks inside a window ending at `at` with nothing changed between
        them: the invoices still remindable whose latest due offset got no email."""
        problems = []
        for shown in self.shown.values():
            due = self.due_offsets(shown, at)
            if not due or not shown.recipients:
                continue
            first = min(
                (c.at for c in self.candidates.get(shown.invoice, []) if c.offset == due[-1]), default=None
            )
            if first is None:
                problems.append(f"{shown} offset {due[-1]}: due, never seen by a planning")
                continue
            if any(when >= first for when, _ in self.receipts.get(shown.invoice, [])):
                continue
            if (
                due[-1] in self.skipped.get(shown.invoice, set())
                or any(when > first for when in self.gone.get(shown.invoice, []))
                or self.reconfigured > first  # its offset may have been taken out meanwhile
            ):
                self.excused += 1
                continue
            problems.append(f"{shown} offset {due[-1]} (due since the planning at {first}): never emailed")
        return problems


def _distinct_offsets(receipts: list[frozenset[int]]) -> bool:
    """Whether each receipt can be given an offset of its own set, all different."""

    def fits(index: int, used: frozenset[int]) -> bool:
        if index == len(receipts):
            return True
        return any(fits(index + 1, used | {o}) for o in receipts[index] - used)

    return fits(0, frozenset())


def next_open(settings: Settings, at: datetime, step: timedelta = timedelta(minutes=15)) -> datetime:
    """The first quarter hour at or after `at` inside a window (the oracle's own search)."""
    moment = at
    while not settings.open(moment):
        moment += step
    return moment
