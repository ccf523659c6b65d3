"""Deterministic generator of realistic accounting companies for the simulators.

`generate_company(kind, seed=..., customers=..., invoices=..., today=...)` builds the same
`SimCompany` for the same arguments (all randomness from one `random.Random(seed)`, no wall
clock). The mix covers what a sync and the portal rules must handle: inactive/archived
customers, several and shared emails, invalid emails, non-ASCII names, sent/unsent/printed,
paid/part-paid/voided/deleted/draft invoices, past due, multiple currencies, and for Xero
contact persons, suppliers with bills, and GDPR-request contacts.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Literal

from connectors.simulators.ledger_generator import add_ledger
from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice

Kind = Literal["quickbooks", "xero"]
CENT = Decimal("0.01")


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


_FIRST = _words("Amy Bill Chen Dana Eva Femi Gus Hana Ivan Jo Kai Lena Mo Nia Omar Pia Raj Sara")
_LAST = _words(
    "Adams Brown Cruz Dubois Evans Fischer Garcia Hughes Ito Jensen Kowalski Lopez Murphy "
    "Nakamura Olsen Patel Quinn Rossi Smith Tanaka Ueda Varga Weber Young Zhang"
)
_TRADE = _words(
    "Bakery Builders Consulting Dental Electrics Farms Garage Hardware Interiors Joinery "
    "Kitchens Landscaping Media Nursery Optics Plumbing Roofing Studio Tiles Travel Wines"
)
_SUFFIX = ("LLC", "Inc.", "Ltd", "& Co", "Group", "Partners", "", "", "")
NON_ASCII_NAMES = _words(
    "Café Müller GmbH|Łódź Sp. z o.o.|株式会社サンプル|Škoda Dílna s.r.o.|Ørsted Rådgivning ApS|"
    "Ñandú Importaciones S.A.|Αθηνά Εμπορική Α.Ε.|ООО Северный Ветер|Zürich Bäckerei AG",
    "|",
)
SHARED_EMAILS = (
    "ap@ledgerlight-bookkeeping.example.com",
    "invoices@shared-services.example.net",
    "accounts@familyoffice.example.org",
)
INVALID_EMAILS = _words("accounts@|billing example.com|jo@@example.com|n/a|ap@localhost", "|")
_LOCAL_PARTS = ("ap", "accounts", "billing", "finance", "info", "office", "payables")
_FOREIGN = ("EUR", "GBP", "CAD", "AUD")


def generate_company(
    kind: Kind,
    *,
    seed: int,
    customers: int,
    invoices: int,
    today: date,
    history_days: int = 400,
    home_currency: str | None = None,
    company_id: str | None = None,
    name: str | None = None,
    ledger: bool = True,
) -> SimCompany:
    """A realistic company of `customers` contacts and `invoices` documents, all dated before
    `today`. QuickBooks ids are increasing integers as strings, Xero ids seeded UUIDs.

    `ledger` adds what paid the invoices (`ledger_generator`: about one payment per paid or
    part-paid invoice, and credit notes); without it the company has invoices only.
    """
    rng = random.Random(seed)
    home = home_currency or ("USD" if kind == "quickbooks" else "GBP")
    company = SimCompany(
        id=company_id or _company_id(kind, rng),
        name=name or f"{rng.choice(_LAST)} {rng.choice(_TRADE)} (seed {seed})",
        kind=kind,
    )
    start = today - timedelta(days=history_days)
    ids = _IdMaker(kind, rng)
    used: set[str] = set()
    for _ in range(customers):
        name = _unique(_company_name(rng), used)
        customer = _customer(kind, rng, ids.next("customer"), name, home, start, today)
        company.customers[customer.id] = customer
    _add_invoices(company, rng, ids, invoices, start, today)
    if ledger:
        add_ledger(company, seed=seed, today=today)
    return company


def _company_id(kind: Kind, rng: random.Random) -> str:
    if kind == "quickbooks":
        return str(rng.randrange(9_130_000_000_000_000, 9_131_000_000_000_000))
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _IdMaker:
    """QuickBooks: per-entity counters ("1", "2", ...); Xero: UUIDs from the seeded rng."""

    def __init__(self, kind: Kind, rng: random.Random) -> None:
        self.kind, self.rng = kind, rng
        self.counters = {"customer": 0, "invoice": 100}

    def next(self, entity: str) -> str:
        if self.kind == "xero":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.counters[entity] += 1
        return str(self.counters[entity])


def _customer(
    kind: Kind, rng: random.Random, cid: str, name: str, home: str, start: date, today: date
) -> SimCustomer:
    roll = rng.random()
    customer = SimCustomer(
        id=cid,
        name=name,
        active=rng.random() >= 0.05,
        emails=[],
        updated_at=_stamp(rng, start, today),
        currency=rng.choice(_FOREIGN) if rng.random() < 0.06 else home,
    )
    primary = _email(rng, name, roll)
    if kind == "quickbooks":
        extra = rng.random()
        if primary and extra < 0.16:
            customer.emails = [primary, _email(rng, name, rng.random()) or SHARED_EMAILS[0]]
        else:
            customer.emails = [primary] if primary else []
    else:
        customer.emails = [primary] if primary else []
        customer.contact_persons = _contact_persons(rng, name)
        supplier_roll = rng.random()
        customer.is_supplier = supplier_roll < 0.08
        customer.is_customer = supplier_roll >= 0.05  # 5% supplier-only, 3% both
        customer.gdpr_request = rng.random() < 0.01
    return customer


def _company_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(NON_ASCII_NAMES)
    if roll < 0.35:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    return f"{rng.choice(_LAST)} {rng.choice(_TRADE)} {rng.choice(_SUFFIX)}".strip()


def _unique(name: str, used: set[str]) -> str:
    """QuickBooks DisplayName and Xero contact Name must be unique: number the repeats."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name} ({n})"
    used.add(candidate)
    return candidate


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_name.lower()).split()
    return "-".join(words[:3]) or "company"


def _email(rng: random.Random, name: str, roll: float) -> str | None:
    """Mostly a plausible address; sometimes none, shared, invalid, or oddly cased."""
    if roll < 0.04:
        return None
    if roll < 0.07:
        return rng.choice(SHARED_EMAILS)
    if roll < 0.09:
        return rng.choice(INVALID_EMAILS)
    address = f"{rng.choice(_LOCAL_PARTS)}@{_slug(name)}.example.com"
    if roll < 0.11:
        return f" {address.title()} "  # stray spaces and capitals, as typed by a person
    return address


def _contact_persons(rng: random.Random, name: str) -> list[tuple[str, bool]]:
    people = []
    for _ in range(rng.choices((0, 1, 2, 3), weights=(45, 30, 18, 7))[0]):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}@{_slug(name)}.example.com".lower()
        people.append((email, rng.random() < 0.7))
    return people


def _add_invoices(
    company: SimCompany,
    rng: random.Random,
    ids: _IdMaker,
    count: int,
    start: date,
    today: date,
) -> None:
    contacts = list(company.customers.values())
    buyers = [c for c in contacts if c.is_customer]
    sellers = [c for c in contacts if c.is_supplier]
    if not buyers and count:
        raise ValueError("cannot generate invoices for a company with no customers")
    # A few customers have many invoices, most have a handful (as in real ledgers).
    buyer_weights = list(accumulate(rng.paretovariate(1.2) for _ in buyers))
    seller_weights = list(accumulate(rng.paretovariate(1.2) for _ in sellers))
    for number in range(1, count + 1):
        is_bill = company.kind == "xero" and sellers and rng.random() < 0.04
        pool, weights = (sellers, seller_weights) if is_bill else (buyers, buyer_weights)
        contact = rng.choices(pool, cum_weights=weights)[0]
        invoice = _invoice(company.kind, rng, ids.next("invoice"), number, contact, start, today)
        if is_bill:
            invoice.type, invoice.doc_number = "ACCPAY", f"BILL-{number:06d}"
            invoice.email_sent = invoice.printed = False
        company.invoices[invoice.id] = invoice


def _invoice(
    kind: str,
    rng: random.Random,
    iid: str,
    number: int,
    customer: SimCustomer,
    start: date,
    today: date,
) -> SimInvoice:
    issue = start + timedelta(days=rng.randrange(max(1, (today - start).days)))
    due = issue + timedelta(days=rng.choices((0, 15, 30, 45, 60), weights=(10, 20, 50, 10, 10))[0])
    total = _amount(rng)
    invoice = SimInvoice(
        id=iid,
        doc_number=f"{'INV-' if kind == 'xero' else ''}{1000 + number}",
        customer_id=customer.id,
        issue_date=issue,
        due_date=due,
        currency=customer.currency,
        total=total,
        balance=total,
        updated_at=_stamp(rng, issue, min(issue + timedelta(days=3), today)),
    )
    delivery = rng.random()
    invoice.email_sent = delivery < 0.70
    invoice.printed = 0.70 <= delivery < 0.78 or (invoice.email_sent and delivery < 0.05)
    _settle(kind, rng, invoice, today)
    return invoice


def _amount(rng: random.Random) -> Decimal:
    # Log-uniform between 20 and 20,000: many small invoices, a long tail of large ones.
    value = 20 * (1000 ** rng.random())
    return Decimal(str(value)).quantize(CENT)


def _settle(kind: str, rng: random.Random, invoice: SimInvoice, today: date) -> None:
    """Pick the invoice's life so far: paid, part-paid, voided, deleted, draft or open."""
    age = (today - invoice.issue_date).days
    roll = rng.random()
    paid_share = min(0.85, age / 120)  # older invoices are more likely settled
    if roll < 0.03:
        invoice.status, invoice.balance = "voided", Decimal("0.00")
        if kind == "quickbooks":
            invoice.total = Decimal("0.00")  # QuickBooks zeroes a voided invoice's amounts
    elif roll < 0.05:
        invoice.status = "deleted"
    elif kind == "xero" and roll < 0.10:
        invoice.status = "draft" if roll < 0.085 else "submitted"
        invoice.email_sent = invoice.printed = False
    elif roll < 0.10 + paid_share * 0.9:
        invoice.balance = Decimal("0.00")
    elif roll < 0.10 + paid_share * 0.9 + 0.08:
        share = Decimal(rng.randrange(10, 90)) / 100
        invoice.balance = (invoice.total * share).quantize(CENT)
    else:
        return
    invoice.updated_at = _stamp(rng, invoice.issue_date, min(invoice.due_date + timedelta(45), today))


def _stamp(rng: random.Random, first: date, last: date) -> datetime:
    """A whole-second UTC time from `first` up to (excluding) midnight starting `last`."""
    begin = datetime.combine(first, time(), UTC)
    seconds = max(1, int((datetime.combine(last, time(), UTC) - begin).total_seconds()))
    return begin + timedelta(seconds=rng.randrange(seconds))


# -- the hand-readable preset for the demo and for readable tests ---------------------

# name, active, emails, currency, Xero extras (contact persons, is_customer, is_supplier, gdpr)
_SAMPLE_CUSTOMERS = (
    ("Amy's Bird Sanctuary", True, ["amy@birds.example.com"], "", ()),
    (
        "Café Müller GmbH",
        True,
        ["buchhaltung@cafe-mueller.example.de", "chef@cafe-mueller.example.de"],
        "EUR",
        (),
    ),
    (
        "Łódź Sp. z o.o.",
        True,
        ["faktury@lodz.example.pl"],
        "",
        (("anna.nowak@lodz.example.pl", True), ("piotr@lodz.example.pl", False)),
    ),
    ("株式会社サンプル", True, ["keiri@sample.example.jp"], "", ()),
    ('Smith & Sons "Quality" Ltd', True, [SHARED_EMAILS[0]], "", ()),
    ("O'Brien Plumbing", True, [SHARED_EMAILS[0], "pat@obrien.example.com"], "", ()),
    ("Dormant Traders Inc.", False, ["old@dormant.example.com"], "", ()),
    ("No Email Bakery", True, [], "", (("owner@noemail-bakery.example.com", True),)),
    ("Typo Tiles LLC", True, ["billing example.com"], "", ()),
    ("Northwind Supplies", True, ["sales@northwind.example.co.uk"], "GBP", "supplier"),
    ("Erased Person", True, ["erased@example.invalid"], "", "gdpr"),
)

# customer index, issued days ago, terms days, total, balance, sent, printed, status, type
_SAMPLE_INVOICES = (
    (0, 10, 30, "120.00", "120.00", True, False, "open", "ACCREC"),  # sent, not yet due
    (0, 50, 30, "250.00", "250.00", True, False, "open", "ACCREC"),  # sent, past due
    (0, 80, 30, "75.50", "0.00", True, False, "open", "ACCREC"),  # paid
    (1, 5, 14, "1999.99", "1999.99", True, False, "open", "ACCREC"),  # EUR, multi-currency
    (1, 40, 14, "480.00", "180.00", True, False, "open", "ACCREC"),  # part-paid, past due
    (2, 3, 30, "310.00", "310.00", False, False, "open", "ACCREC"),  # unsent
    (2, 20, 30, "95.00", "95.00", False, True, "open", "ACCREC"),  # printed only
    (2, 60, 30, "640.00", "0.00", True, True, "open", "ACCREC"),  # sent and printed, paid
    (3, 12, 30, "5000.00", "5000.00", True, False, "open", "ACCREC"),
    (3, 90, 30, "42.00", "42.00", True, False, "open", "ACCREC"),  # long past due
    (4, 15, 30, "880.00", "880.00", True, False, "open", "ACCREC"),  # shared email
    (4, 25, 30, "130.00", "0.00", True, False, "voided", "ACCREC"),
    (5, 8, 30, "260.00", "260.00", True, False, "open", "ACCREC"),  # shared email
    (5, 33, 30, "410.00", "410.00", False, False, "deleted", "ACCREC"),
    (6, 200, 30, "300.00", "0.00", True, False, "open", "ACCREC"),  # inactive customer, paid
    (6, 150, 30, "150.00", "150.00", True, False, "open", "ACCREC"),  # inactive, still owes
    (7, 9, 30, "55.00", "55.00", False, True, "open", "ACCREC"),  # no email: printed
    (7, 45, 30, "65.00", "65.00", True, False, "open", "ACCREC"),
    (8, 4, 30, "720.00", "720.00", True, False, "open", "ACCREC"),  # invalid email
    (8, 2, 30, "99.00", "99.00", False, False, "draft", "ACCREC"),  # Xero draft
    (9, 18, 30, "1500.00", "1500.00", True, False, "open", "ACCREC"),  # GBP
    (9, 22, 30, "900.00", "900.00", False, False, "open", "ACCPAY"),  # Xero bill
    (10, 30, 30, "60.00", "60.00", True, False, "open", "ACCREC"),  # GDPR contact
    (0, 1, 30, "33.33", "33.33", False, False, "submitted", "ACCREC"),  # Xero awaiting approval
    (1, 70, 30, "210.00", "210.00", True, False, "open", "ACCREC"),  # refunded: reopened
    (3, 35, 0, "18.00", "0.00", True, False, "open", "ACCREC"),  # due on receipt, paid
    (4, 6, 45, "1234.56", "1000.00", True, False, "open", "ACCREC"),  # part-paid, not due
    (5, 120, 60, "2750.00", "0.00", True, True, "open", "ACCREC"),
    (6, 16, 30, "10.00", "0.00", True, False, "voided", "ACCREC"),
    (7, 28, 30, "4.99", "4.99", True, False, "open", "ACCREC"),
)


def sample_company(kind: Kind, *, today: date, company_id: str | None = None) -> SimCompany:
    """A small hand-readable company (11 customers, 30 invoices) with one of every case.

    QuickBooks has no suppliers, drafts or GDPR contacts: there those rows become ordinary
    customers and open invoices, so both kinds keep the same ids and amounts.
    """
    rng = random.Random(0)
    xero = kind == "xero"
    home = "GBP" if xero else "USD"
    company = SimCompany(id=company_id or _company_id(kind, rng), name="Sample Co", kind=kind)
    ids = _IdMaker(kind, rng)
    for index, (name, active, emails, currency, extra) in enumerate(_SAMPLE_CUSTOMERS):
        at = _sample_time(today, 300 - index, index)
        customer = SimCustomer(
            ids.next("customer"), name, active, list(emails), at, currency=currency or home
        )
        if xero and extra == "supplier":
            customer.is_customer, customer.is_supplier = False, True
        elif xero and extra == "gdpr":
            customer.gdpr_request = True
        elif xero and isinstance(extra, tuple):
            customer.contact_persons = list(extra)
        company.customers[customer.id] = customer
    customer_ids = list(company.customers)
    for number, row in enumerate(_SAMPLE_INVOICES, start=1):
        invoice = _sample_invoice(ids, customer_ids, company, number, row, today, xero)
        company.invoices[invoice.id] = invoice
    add_ledger(company, seed=0, today=today, credit_rate=0.25)
    return company


def _sample_invoice(
    ids: _IdMaker,
    customer_ids: list[str],
    company: SimCompany,
    number: int,
    row: tuple,
    today: date,
    xero: bool,
) -> SimInvoice:
    cust, ago, terms, total, balance, sent, printed, status, doc_type = row
    customer = company.customers[customer_ids[cust]]
    if not xero and (status in ("draft", "submitted") or doc_type == "ACCPAY"):
        status, doc_type = "open", "ACCREC"
    issue = today - timedelta(days=ago)
    settled = Decimal(balance) < Decimal(total) or status != "open"
    invoice = SimInvoice(
        ids.next("invoice"),
        f"{'INV-' if xero else ''}{1000 + number}",
        customer.id,
        issue,
        issue + timedelta(days=terms),
        customer.currency,
        Decimal(total),
        Decimal(balance),
        _sample_time(today, ago // 2 if settled else ago, number),
        email_sent=sent,
        printed=printed,
        status=status,
        type=doc_type,
    )
    if status == "voided" and not xero:
        invoice.total = Decimal("0.00")
    return invoice


def _sample_time(today: date, days_ago: int, minute: int) -> datetime:
    return datetime.combine(today - timedelta(days=max(1, days_ago)), time(9, minute), UTC)
