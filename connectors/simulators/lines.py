"""Deterministic invoice detail (lines, tax, address, payment stubs) for realistic payloads.

Real QuickBooks and Xero invoices carry several line items, tax detail, addresses and
linked payments: 2-3 KB of JSON that a sync must parse and mostly ignore. The neutral model
keeps only what arsync reads (total, balance, dates), so the detail is derived here from the
invoice's own id and total, with no random state: the same invoice renders the same bytes,
the generator's sequence is untouched, and the lines always add up to the total exactly.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal

TAX_BP = 825  # 8.25 % sales tax, in basis points, on about half of the invoices

ITEMS = (
    ("1", "Services", "Consulting hours"),
    ("2", "Design", "Design work, revisions included"),
    ("3", "Installation", "On-site installation and testing"),
    ("4", "Hardware", "Replacement parts, as quoted"),
    ("5", "Maintenance", "Quarterly maintenance visit"),
    ("6", "Training", "Staff training session (half day)"),
    ("7", "Travel", "Travel and mileage"),
    ("8", "Support", "Priority support plan, monthly"),
)
STREETS = ("Main St", "Market St", "Cypress Hill Ave", "Harbour Rd", "Station Rd", "Elm Ct")
CITIES = (
    ("Mountain View", "CA", "94043"),
    ("Austin", "TX", "78701"),
    ("Portland", "OR", "97205"),
    ("Leeds", "West Yorkshire", "LS1 4AP"),
    ("Bristol", "Avon", "BS1 5TR"),
)


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based LineNum
    item: tuple[str, str, str]  # (ItemRef value, item name, description)
    quantity: int
    unit_cents: int
    cents: int  # quantity * unit_cents


@dataclass(frozen=True, slots=True)
class Detail:
    lines: tuple[Line, ...]
    subtotal_cents: int  # sum of the lines
    tax_cents: int  # subtotal + tax == the invoice's total
    street: str  # "5647 Cypress Hill Ave"
    city: tuple[str, str, str]  # (city, region, postal code)
    seed: int  # for any further deterministic choice (custom fields, references)


def detail(invoice_id: str, total: Decimal) -> Detail:
    """The invoice's lines and tax, adding up to `total` exactly (2 to 5 sales lines).

    Integer cents throughout: this runs for every invoice a simulator pre-renders."""
    seed = zlib.crc32(invoice_id.encode())
    cents = int(total * 100) if total.is_finite() else 0  # fault injection sends NaN
    tax = (2 * cents * TAX_BP + 10000 + TAX_BP) // (2 * (10000 + TAX_BP)) if seed & 1 and cents > 0 else 0
    subtotal = cents - tax
    count = 2 + seed % 4
    weights = [1 + (seed >> (3 * k + 2)) % 7 for k in range(count)]
    whole = sum(weights)
    shares = [subtotal * w // whole for w in weights]
    shares[-1] += subtotal - sum(shares)
    lines = []
    for k, share in enumerate(shares):
        quantity = 1 + (seed >> (2 * k + 5)) % 4
        if share % quantity:
            quantity = 1
        item = ITEMS[(seed >> (3 * k)) % len(ITEMS)]
        lines.append(Line(k + 1, item, quantity, share // quantity, share))
    street = f"{100 + seed % 9000} {STREETS[seed % len(STREETS)]}"
    return Detail(tuple(lines), subtotal, tax, street, CITIES[seed % len(CITIES)], seed)


def amount(cents: int) -> float:
    """Cents as the JSON number QuickBooks writes (shortest form: 29.0, 145.03)."""
    return cents / 100


def decimal_text(cents: int) -> str:
    """Cents as a two-place JSON number literal, as Xero writes money ("145.03", "-2.50")."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"
