"""What QuickBooks Online's invoice fields mean: sent, voided, deleted.

The normalizers call these at the boundary (`to_invoice(raw)`), so the meaning of a
QuickBooks field is decided in one place; `portal_rules` only sees the neutral facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal


def quickbooks_sent(email_status: str | None, print_status: str | None) -> bool:
    """Emailed (`EmailStatus == "EmailSent"`) or printed (`PrintStatus == "PrintComplete"`)."""
    return email_status == "EmailSent" or print_status == "PrintComplete"


def quickbooks_voided(private_note: str | None, total: Decimal, balance: Decimal) -> bool:
    """QuickBooks keeps a voided invoice with zero amounts and a note beginning "Voided".

    Both marks are required: a legitimate zero invoice, or a live one whose note merely
    starts with the word, stays live.
    """
    note = (private_note or "").lstrip().lower()
    return note.startswith("voided") and total == 0 and balance == 0


def quickbooks_payment_voided(
    private_note: str | None, total: Decimal, unapplied: Decimal, line_amounts: Iterable[Decimal]
) -> bool:
    """A voided Payment: QuickBooks zeroes every amount, its lines' too, and prepends "Voided"
    to the note. A live payment of `TotalAmt` 0 (one that only applies a credit memo) has the
    same zero totals: its lines moving credit tell it apart when its own note begins with the
    word ("Voided check 1043, settled by credit memo")."""
    return quickbooks_voided(private_note, total, unapplied) and not any(line_amounts)


def quickbooks_deleted(cdc_status: str | None) -> bool:
    """Deletions arrive only through CDC, as an object with `status="Deleted"`."""
    return cdc_status == "Deleted"
