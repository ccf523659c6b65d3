"""Payments and credit notes for a generated company, consistent with its invoice balances.

`add_ledger(company, seed=..., today=...)` runs after the invoices exist and never changes
them: every open invoice whose balance is below its total gets what paid the difference,
mostly one payment (about one per paid or part-paid invoice), sometimes two, an overpayment
(QuickBooks `UnappliedAmt`), or a credit note applied to it (QuickBooks: through a payment
whose lines link both, `TotalAmt` 0 when no money moves), plus bounced payments that were
voided or deleted, credit notes never applied, Xero drafts, and (Xero) supplier payments and
credits that a connector must filter out. Its own `random.Random` keeps the customers and
invoices of a seed exactly what they were before payments existed.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from connectors.simulators.ledger import SimAllocation, SimCredit, SimPayment
from connectors.simulators.model import SimCompany, SimInvoice

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


class LedgerIds:
    """QuickBooks: one counter after the last invoice id (transactions share a sequence);
    Xero: UUIDs from the ledger's own seeded generator."""

    def __init__(self, company: SimCompany, rng: random.Random) -> None:
        self.kind, self.rng = company.kind, rng
        numbers = [
            int(key) for key in (*company.invoices, *company.payments, *company.credits) if key.isdigit()
        ]
        self.counter = max(numbers, default=100)
        self.credits = len(company.credits)

    def next(self) -> str:
        if self.kind == "xero":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.counter += 1
        return str(self.counter)

    def credit_number(self) -> str:
        self.credits += 1
        return f"CN-{self.credits:04d}" if self.kind == "xero" else f"C{1000 + self.credits}"


def add_ledger(company: SimCompany, *, seed: int, today: date, credit_rate: float = 0.08) -> None:
    """Add what paid each paid or part-paid open invoice, and a few unapplied credit notes."""
    rng = random.Random(f"arsync-ledger-{seed}")
    ids = LedgerIds(company, rng)
    for invoice in list(company.invoices.values()):
        paid = invoice.total - invoice.balance
        if invoice.status == "open" and paid > 0:
            _settle(company, rng, ids, invoice, paid, credit_rate)
    for customer in list(company.customers.values()):
        if customer.is_customer and rng.random() < 0.03:
            _spare_credit(company, rng, ids, customer.id, customer.currency, today, "ACCRECCREDIT")
        elif company.kind == "xero" and customer.is_supplier and rng.random() < 0.2:
            _spare_credit(company, rng, ids, customer.id, customer.currency, today, "ACCPAYCREDIT")


def _settle(
    company: SimCompany,
    rng: random.Random,
    ids: LedgerIds,
    invoice: SimInvoice,
    paid: Decimal,
    credit_rate: float,
) -> None:
    when = invoice.updated_at  # the invoice last changed when it was (last) paid
    if invoice.type != "ACCREC":
        _payment(company, rng, ids, invoice, paid, when, kind="ACCPAYPAYMENT")
        return
    if rng.random() < 0.01:  # a bounced cheque, voided (QuickBooks) or deleted (Xero)
        bounced = _payment(company, rng, ids, invoice, paid, _between(rng, invoice, when))
        bounced.status = "voided" if company.kind == "quickbooks" else "deleted"
    roll = rng.random()
    if roll < credit_rate:
        _credit_applied(company, rng, ids, invoice, paid, when)
    elif roll < credit_rate + 0.04 and paid >= Decimal("0.02"):
        first = (paid * Decimal(rng.randrange(10, 90)) / 100).quantize(CENT)
        _payment(company, rng, ids, invoice, first, _between(rng, invoice, when))
        _payment(company, rng, ids, invoice, paid - first, when)
    else:
        payment = _payment(company, rng, ids, invoice, paid, when)
        if company.kind == "quickbooks" and rng.random() < 0.03:
            payment.amount += Decimal(rng.randrange(100, 5000)) / 100  # overpaid: UnappliedAmt


def _credit_applied(
    company: SimCompany,
    rng: random.Random,
    ids: LedgerIds,
    invoice: SimInvoice,
    paid: Decimal,
    when: datetime,
) -> None:
    """A credit note pays part (or all) of `paid`; a payment the rest."""
    applied = min(paid, max(CENT, (paid * Decimal(rng.randrange(20, 101)) / 100).quantize(CENT)))
    spare = (applied * Decimal(rng.randrange(1, 50)) / 100).quantize(CENT) if rng.random() < 0.3 else ZERO
    issued = _between(rng, invoice, when)
    credit = SimCredit(
        ids.next(),
        ids.credit_number(),
        invoice.customer_id,
        issued.date(),
        invoice.currency,
        applied + spare,
        when,
    )
    company.credits[credit.id] = credit
    rest = paid - applied
    if company.kind == "xero":
        credit.allocations.append(SimAllocation(invoice.id, applied, when.date()))
        if rest > 0:
            _payment(company, rng, ids, invoice, rest, when)
        return
    # QuickBooks applies a credit through a Payment linking both; it also carries the money
    # when the customer paid the rest at the same time.
    mixed = rest > 0 and rng.random() < 0.5
    if rest > 0 and not mixed:
        _payment(company, rng, ids, invoice, rest, when)
    carrier = _payment(company, rng, ids, invoice, rest if mixed else ZERO, when)
    credit.allocations.append(SimAllocation(invoice.id, applied, when.date(), via=carrier.id))


def _payment(
    company: SimCompany,
    rng: random.Random,
    ids: LedgerIds,
    invoice: SimInvoice,
    amount: Decimal,
    when: datetime,
    *,
    kind: str = "ACCRECPAYMENT",
) -> SimPayment:
    allocations = [SimAllocation(invoice.id, amount, when.date())] if amount > 0 else []
    payment = SimPayment(
        ids.next(),
        invoice.customer_id,
        when.date(),
        invoice.currency,
        amount,
        when,
        allocations,
        reference=_reference(rng, company.kind),
        type=kind,
    )
    company.payments[payment.id] = payment
    return payment


def _spare_credit(
    company: SimCompany,
    rng: random.Random,
    ids: LedgerIds,
    customer_id: str,
    currency: str,
    today: date,
    kind: str,
) -> None:
    """A credit note nobody applied yet (Xero: sometimes still a draft, or voided)."""
    issued = today - timedelta(days=rng.randrange(1, 200))
    at = datetime.combine(issued, time(10), UTC) + timedelta(seconds=rng.randrange(20_000))
    total = (20 * Decimal(str(50 ** rng.random()))).quantize(CENT)
    credit = SimCredit(ids.next(), ids.credit_number(), customer_id, issued, currency, total, at, type=kind)
    roll = rng.random()
    if company.kind == "xero" and roll < 0.15:
        credit.status = "draft"
    elif roll < 0.22:
        credit.status = "voided"
        if company.kind == "quickbooks":
            credit.total = ZERO  # QuickBooks zeroes a voided transaction
    company.credits[credit.id] = credit


def _between(rng: random.Random, invoice: SimInvoice, last: datetime) -> datetime:
    """A whole-second time from the invoice's issue date up to `last`."""
    first = datetime.combine(invoice.issue_date, time(), UTC)
    seconds = int((last - first).total_seconds())
    return first + timedelta(seconds=rng.randrange(seconds)) if seconds > 0 else last


def _reference(rng: random.Random, kind: str) -> str:
    roll = rng.random()
    if roll < 0.3:
        return ""
    if kind == "xero":
        return f"Transfer {rng.randrange(1000, 99999)}"
    return str(rng.randrange(1000, 99999))  # a cheque number (PaymentRefNum)
