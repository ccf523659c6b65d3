"""What Xero invoice and contact fields mean (vendor knowledge lives in the connector)."""

from __future__ import annotations

import pytest

from connectors.xero.signals import (
    LiveFlags,
    xero_contact_active,
    xero_erasure_requested,
    xero_flags,
    xero_importable,
    xero_is_customer,
    xero_payment_deleted,
    xero_sent,
)


@pytest.mark.parametrize(
    ("sent_to_contact", "expected"),
    [(True, True), (False, False), (None, False)],
    ids=["sent", "explicitly-not-sent", "omitted-means-not-sent"],
)
def test_xero_sent(sent_to_contact, expected: bool) -> None:
    assert xero_sent(sent_to_contact) is expected


@pytest.mark.parametrize(
    ("status", "flags"),
    [
        ("AUTHORISED", LiveFlags()),
        ("PAID", LiveFlags()),
        ("DRAFT", LiveFlags(draft=True)),
        ("SUBMITTED", LiveFlags(draft=True)),
        ("VOIDED", LiveFlags(voided=True)),
        ("DELETED", LiveFlags(deleted=True)),
        ("authorised", LiveFlags()),
        ("SOMETHING_NEW", None),
        ("PENDING", None),
        ("", None),
        (" PAID ", None),
        (None, LiveFlags(draft=True)),
    ],
    ids=[
        "authorised",
        "paid",
        "draft",
        "submitted",
        "voided",
        "deleted",
        "any-case",
        "unknown",
        "pending",
        "empty",
        "padded",
        "missing",
    ],
)
def test_xero_status(status, flags: LiveFlags | None) -> None:
    """None: not one of Xero's documented statuses (the normalizer quarantines the record)."""
    assert xero_flags(status) == flags


@pytest.mark.parametrize(
    ("status", "deleted"),
    [("AUTHORISED", False), ("DELETED", True), ("deleted", True), ("PAID", None), ("", None)],
    ids=["authorised", "deleted", "any-case", "an-invoice-status", "empty"],
)
def test_xero_payment_status(status: str, deleted: bool | None) -> None:
    assert xero_payment_deleted(status) is deleted


@pytest.mark.parametrize(
    ("invoice_type", "expected"),
    [("ACCREC", True), ("accrec", True), ("ACCPAY", False), (None, False)],
    ids=["sales-invoice", "lower-case", "bill", "missing"],
)
def test_xero_importable(invoice_type, expected: bool) -> None:
    assert xero_importable(invoice_type) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [("ACTIVE", True), ("ARCHIVED", False), ("GDPRREQUEST", False), (None, True)],
    ids=["active", "archived", "gdpr-request", "status-missing"],
)
def test_xero_contact_active(status: str | None, expected: bool) -> None:
    assert xero_contact_active(status) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [("GDPRREQUEST", True), ("gdprrequest", True), ("ARCHIVED", False), ("ACTIVE", False), (None, False)],
    ids=["gdpr-request", "any-case", "archived", "active", "status-missing"],
)
def test_xero_erasure_requested(status: str | None, expected: bool) -> None:
    assert xero_erasure_requested(status) is expected


@pytest.mark.parametrize(
    ("is_customer", "has_sales_invoice", "expected"),
    [(True, False, True), (False, True, True), (None, True, True), (False, False, False)],
    ids=["flagged-customer", "has-accrec-invoice", "flag-missing-but-sales", "supplier-only"],
)
def test_xero_is_customer(is_customer: bool | None, has_sales_invoice: bool, expected: bool) -> None:
    assert xero_is_customer(is_customer, has_sales_invoice) is expected
