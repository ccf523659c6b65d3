"""QuickBooks `Payment` and `CreditMemo` JSON -> our payment and credit records.

A QuickBooks payment has one line per linked transaction: lines linking an `Invoice`
receive money, lines linking a `CreditMemo` supply credit (how QuickBooks records a credit
memo applied to an invoice, `TotalAmt` 0 when no money moves). The invoice lines are funded
first by the payment's credit lines, in line order, as allocations from those credit memos,
and the rest from the payment's own money (SPEC section 9). Lines linking a `JournalEntry`
supply credit too when the books say so (`_journal_credit`). A credit memo's `Balance` is
the credit not yet applied. Voids keep the record with zero amounts and a `PrivateNote`
beginning "Voided"; deletions arrive only through CDC as `status="Deleted"`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from connectors.quickbooks.normalize import (
    ZERO,
    Malformed,
    _date,
    _id,
    _mapping,
    _money,
    _ref_value,
    _text,
    currency_of,
    updated_at,
)
from connectors.quickbooks.signals import quickbooks_deleted, quickbooks_payment_voided, quickbooks_voided
from portal_rules.records import AllocationRecord, CreditRecord, PaymentRecord


def to_payment(raw: Mapping[str, Any], *, home_currency: str = "USD") -> PaymentRecord:
    """A QBO Payment (from a query or CDC) as a `PaymentRecord` with its allocations."""
    raw = _mapping(raw)
    ref, updated = _id(raw), updated_at(raw)
    if quickbooks_deleted(raw.get("status")):
        customer = _ref_value(raw.get("CustomerRef")) or ""
        return PaymentRecord(
            ref, customer, None, home_currency, ZERO, ZERO, None, deleted=True, updated_at=updated
        )
    customer_ref = _ref_value(raw.get("CustomerRef"))
    if not customer_ref:
        raise Malformed("missing CustomerRef")
    amount = _not_negative(raw, "TotalAmt")
    unapplied = _not_negative(raw, "UnappliedAmt") if raw.get("UnappliedAmt") is not None else ZERO
    paid_on = _date(raw, "TxnDate")
    lines = _lines(raw.get("Line"))
    voided = quickbooks_payment_voided(_text(raw.get("PrivateNote")), amount, unapplied, line_amounts(lines))
    allocations = () if voided else _allocations(ref, paid_on, lines, amount - unapplied)
    return PaymentRecord(
        ref=ref,
        customer_ref=customer_ref,
        paid_on=paid_on,
        currency=currency_of(raw, home_currency),
        amount=amount,
        unapplied=unapplied,
        reference=_text(raw.get("PaymentRefNum")) or None,
        credit_only=not voided and amount == 0,
        voided=voided,
        updated_at=updated,
        allocations=allocations,
    )


def to_credit(raw: Mapping[str, Any], *, home_currency: str = "USD") -> CreditRecord:
    """A QBO CreditMemo as a `CreditRecord`; `Balance` is the credit not yet applied."""
    raw = _mapping(raw)
    ref, updated = _id(raw), updated_at(raw)
    if quickbooks_deleted(raw.get("status")):
        customer = _ref_value(raw.get("CustomerRef")) or ""
        return CreditRecord(
            ref, customer, None, None, home_currency, ZERO, ZERO, deleted=True, updated_at=updated
        )
    customer_ref = _ref_value(raw.get("CustomerRef"))
    if not customer_ref:
        raise Malformed("missing CustomerRef")
    total = _not_negative(raw, "TotalAmt")
    remaining = _not_negative(raw, "Balance" if raw.get("Balance") is not None else "RemainingCredit")
    return CreditRecord(
        ref=ref,
        customer_ref=customer_ref,
        doc_number=_text(raw.get("DocNumber")),
        issue_date=_date(raw, "TxnDate"),
        currency=currency_of(raw, home_currency),
        total=total,
        remaining=remaining,
        voided=quickbooks_voided(_text(raw.get("PrivateNote")), total, remaining),
        updated_at=updated,
    )


def _not_negative(raw: Mapping[str, Any], field: str) -> Decimal:
    """A payment's or a credit memo's amount, which QuickBooks never sends below zero (money
    going back is a refund receipt, a document of its own): a negative one is quarantined
    rather than shown as money the customer owes."""
    amount = _money(raw, field)
    if amount < ZERO:
        raise Malformed(f"negative {field} {amount}")
    return amount


Line = tuple[str, Decimal]  # (linked transaction id, amount)


class PaymentLines(NamedTuple):
    """A payment's lines by what they link, each list in line order."""

    invoices: list[Line]  # receive money
    credits: list[Line]  # credit memos applied: supply credit
    journals: list[Line]  # journal entries: credit applied (a write-off, say) or a charge paid


def line_amounts(lines: PaymentLines) -> Iterator[Decimal]:
    """Every linked line's amount, whatever it links."""
    return (amount for part in lines for _, amount in part)


LINKED = {"Invoice": 0, "CreditMemo": 1, "JournalEntry": 2}  # other types (refund checks) settle no invoice


def _lines(lines: Any) -> PaymentLines:
    """The payment's lines by linked type; other linked types are ignored."""
    if lines is None:
        return PaymentLines([], [], [])
    if not isinstance(lines, list):
        raise Malformed("Line is not a list")
    found = PaymentLines([], [], [])
    for line in lines:
        line = _mapping(line)
        linked = line.get("LinkedTxn") or []
        if not isinstance(linked, list):
            raise Malformed("Line.LinkedTxn is not a list")
        for link in linked:
            kind = link.get("TxnType") if isinstance(link, Mapping) else None
            if not isinstance(kind, str) or kind not in LINKED:
                continue
            txn_id = _text(link.get("TxnId"))
            if not txn_id or not txn_id.strip():
                raise Malformed(f"a payment line links an {kind} without TxnId")
            found[LINKED[kind]].append((txn_id.strip(), _money(line, "Amount")))
    return found


def _allocations(
    ref: str, paid_on: date | None, lines: PaymentLines, money: Decimal
) -> tuple[AllocationRecord, ...]:
    """Fund each invoice line from the credit memo lines first (in order), then from the
    credit journal entries supply, then from the payment's money (`money`: what it applied)."""
    pool = [["credit", credit_ref, amount] for credit_ref, amount in lines.credits if amount > 0]
    pool += _journal_credit(lines, money)
    allocations: list[AllocationRecord] = []
    for invoice_ref, amount in lines.invoices:
        need = amount
        while need > 0 and pool:
            kind, source_ref, available = pool[0]
            take = min(need, available)
            allocations.append(AllocationRecord(kind, source_ref, invoice_ref, take, paid_on))
            need -= take
            pool[0][2] = available - take
            if pool[0][2] <= 0:
                pool.pop(0)
        if need > 0:
            allocations.append(AllocationRecord("payment", ref, invoice_ref, need, paid_on))
    return tuple(allocations)


def _journal_credit(lines: PaymentLines, money: Decimal) -> list[list[Any]]:
    """The credit the journal-entry lines supply, as a pool in line order.

    A journal entry on a payment is either a credit applied to the invoices (how many
    accountants write off bad debt) or a charge the payment pays, and the payment does not
    say which. Its books do: what the invoice lines receive beyond the credit memos and the
    money applied came from journal credit. Without this, a write-off was shown as money
    the customer paid, or (a payment of `TotalAmt` 0) left out of the statement.
    """
    if not lines.journals:
        return []
    received = sum((amount for _, amount in lines.invoices), ZERO)
    credited = sum((amount for _, amount in lines.credits if amount > 0), ZERO)
    left = received - credited - max(money, ZERO)
    pool: list[list[Any]] = []
    for journal_ref, amount in lines.journals:
        if left <= 0:
            break
        take = min(left, amount)
        if take <= 0:  # a zero or negative line supplies nothing; later ones still may
            continue
        pool.append(["journal", journal_ref, take])
        left -= take
    return pool
