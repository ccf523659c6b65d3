"""Payments and credit notes of the neutral simulator model, and what they say about balances.

Both simulators render these: QuickBooks as `Payment` (lines linking invoices and, for a
credit applied, credit memos) and `CreditMemo`; Xero as `Payments` (one per invoice) and
`CreditNotes` with `Allocations`. The books are consistent when every live invoice's
balance is its total minus the live allocations to it: `inconsistencies(company)` lists
the invoices where that fails (the generator and the mutations keep it empty).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal("0.00")


@dataclass
class SimAllocation:
    """Money from a payment, or credit from a credit note, applied to one invoice."""

    invoice_id: str
    amount: Decimal
    on: date  # Xero: the allocation's Date; QuickBooks: the carrying payment's TxnDate
    # Credit notes only, QuickBooks: the Payment that applied this credit (its lines link
    # both the credit memo and the invoice). None for Xero, whose credit notes allocate.
    via: str | None = None


@dataclass
class SimPayment:
    id: str
    customer_id: str
    paid_on: date
    currency: str
    amount: Decimal  # money received: QuickBooks TotalAmt (0: only applies credit), Xero Amount
    updated_at: datetime  # timezone-aware UTC
    allocations: list[SimAllocation] = field(default_factory=list)  # the money's; Xero: one
    reference: str = ""
    status: str = "live"  # "live", "voided" (QuickBooks: zero amounts), "deleted"
    type: str = "ACCRECPAYMENT"  # Xero ACCPAYPAYMENT pays a bill: never imported
    note: str = ""  # QuickBooks PrivateNote as the user typed it ("Voided" is prepended on a void)
    # QuickBooks: credit from journal entries this payment applies, (journal entry id,
    # allocation) each: how accountants often write off bad debt
    journals: list[tuple[str, SimAllocation]] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.status == "live"

    @property
    def unapplied(self) -> Decimal:
        """Money received but not applied to any invoice (QuickBooks UnappliedAmt)."""
        return self.amount - sum((a.amount for a in self.allocations), ZERO)


@dataclass
class SimCredit:
    id: str
    doc_number: str
    customer_id: str
    issue_date: date
    currency: str
    total: Decimal
    updated_at: datetime  # timezone-aware UTC
    allocations: list[SimAllocation] = field(default_factory=list)
    status: str = "open"  # "open" (Xero AUTHORISED/PAID), "draft", "voided", "deleted"
    type: str = "ACCRECCREDIT"  # Xero ACCPAYCREDIT is a supplier's credit: never imported

    @property
    def live(self) -> bool:
        return self.status == "open"

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.allocations), ZERO)

    @property
    def remaining(self) -> Decimal:
        """Credit not yet applied (QuickBooks Balance, Xero RemainingCredit)."""
        return self.total - self.applied if self.live else ZERO


def live_allocations(company: Any) -> Iterator[tuple[str, SimAllocation]]:
    """("payment"|"journal"|"credit", allocation) for every allocation that counts against a balance."""
    payments: dict[str, SimPayment] = company.payments
    for payment in list(payments.values()):
        if payment.live:
            yield from (("payment", a) for a in payment.allocations)
            yield from (("journal", a) for _, a in payment.journals)
    for credit in list(company.credits.values()):
        if credit.live:
            for allocation in credit.allocations:
                carrier = payments.get(allocation.via) if allocation.via else None
                if allocation.via is None or (carrier is not None and carrier.live):
                    yield "credit", allocation


def applied_by_invoice(company: Any) -> dict[str, Decimal]:
    """Invoice id -> the sum of the live allocations to it."""
    applied: dict[str, Decimal] = {}
    for _, allocation in live_allocations(company):
        applied[allocation.invoice_id] = applied.get(allocation.invoice_id, ZERO) + allocation.amount
    return applied


def inconsistencies(company: Any) -> list[str]:
    """Ids of open invoices whose balance is not total minus the live allocations to them."""
    applied = applied_by_invoice(company)
    return [
        invoice.id
        for invoice in list(company.invoices.values())
        if invoice.status == "open" and invoice.balance != invoice.total - applied.get(invoice.id, ZERO)
    ]


def credit_lines(credits: Iterable[SimCredit]) -> dict[str, list[tuple[SimCredit, SimAllocation]]]:
    """QuickBooks: payment id -> the credit applications that payment carries, in order."""
    lines: dict[str, list[tuple[SimCredit, SimAllocation]]] = {}
    for credit in credits:
        for allocation in credit.allocations:
            if allocation.via is not None:
                lines.setdefault(allocation.via, []).append((credit, allocation))
    return lines
