"""What QuickBooks invoice fields mean (vendor knowledge lives in the connector)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.quickbooks.signals import quickbooks_deleted, quickbooks_sent, quickbooks_voided


@pytest.mark.parametrize(
    ("email_status", "print_status", "expected"),
    [
        ("EmailSent", "NotSet", True),
        ("NotSet", "PrintComplete", True),
        ("NeedToSend", "NeedToPrint", False),
        ("NotSet", "NotSet", False),
        (None, None, False),
    ],
    ids=["emailed", "printed-only", "queued-not-sent", "never-sent", "fields-missing"],
)
def test_quickbooks_sent(email_status, print_status, expected: bool) -> None:
    assert quickbooks_sent(email_status, print_status) is expected


@pytest.mark.parametrize(
    ("note", "total", "balance", "expected"),
    [
        ("Voided", "0", "0", True),
        ("Voided - customer cancelled", "0.00", "0.00", True),
        ("  voided", "0", "0", True),
        ("Voided by mistake, see note", "120.00", "120.00", False),
        (None, "0", "0", False),
        ("Thanks for your business", "0", "0", False),
    ],
    ids=[
        "void-marker",
        "void-marker-with-text",
        "void-marker-leading-space-lower-case",
        "note-says-voided-but-amounts-remain",
        "zero-invoice-without-note",
        "zero-invoice-other-note",
    ],
)
def test_quickbooks_voided(note, total: str, balance: str, expected: bool) -> None:
    assert quickbooks_voided(note, Decimal(total), Decimal(balance)) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Deleted", True), (None, False), ("", False)],
    ids=["cdc-deleted", "no-status", "empty-status"],
)
def test_quickbooks_deleted(status, expected: bool) -> None:
    assert quickbooks_deleted(status) is expected
