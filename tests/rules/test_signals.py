from __future__ import annotations

from decimal import Decimal

import pytest

from portal_rules.signals import (
    LiveFlags,
    quickbooks_deleted,
    quickbooks_sent,
    quickbooks_voided,
    xero_flags,
    xero_importable,
    xero_live,
    xero_sent,
)


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


@pytest.mark.parametrize(
    ("sent_to_contact", "expected"),
    [(True, True), (False, False), (None, False)],
    ids=["sent", "explicitly-not-sent", "omitted-means-not-sent"],
)
def test_xero_sent(sent_to_contact, expected: bool) -> None:
    assert xero_sent(sent_to_contact) is expected


@pytest.mark.parametrize(
    ("status", "live", "flags"),
    [
        ("AUTHORISED", True, LiveFlags()),
        ("PAID", True, LiveFlags()),
        ("DRAFT", False, LiveFlags(draft=True)),
        ("SUBMITTED", False, LiveFlags(draft=True)),
        ("VOIDED", False, LiveFlags(voided=True)),
        ("DELETED", False, LiveFlags(deleted=True)),
        ("SOMETHING_NEW", False, LiveFlags(draft=True)),
        (None, False, LiveFlags(draft=True)),
    ],
    ids=["authorised", "paid", "draft", "submitted", "voided", "deleted", "unknown", "missing"],
)
def test_xero_status(status, live: bool, flags: LiveFlags) -> None:
    assert xero_live(status) is live
    assert xero_flags(status) == flags


@pytest.mark.parametrize(
    ("invoice_type", "expected"),
    [("ACCREC", True), ("ACCPAY", False), (None, False)],
    ids=["sales-invoice", "bill", "missing"],
)
def test_xero_importable(invoice_type, expected: bool) -> None:
    assert xero_importable(invoice_type) is expected
