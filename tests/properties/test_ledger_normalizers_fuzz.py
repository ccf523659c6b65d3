"""Random payment and credit payloads into each system's normalizers: a record with exact
money and allocations, None (a supplier document), or the module's malformed-record error
(quarantined with the id); never anything else."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.quickbooks import normalize as qbo
from connectors.quickbooks import normalize_ledger as qbo_ledger
from connectors.xero import normalize as xero
from connectors.xero import normalize_ledger as xero_ledger
from portal_rules.records import CreditRecord, PaymentRecord

from .test_normalizers_fuzz import anything, iso_days, money, outcome, payloads, qbo_times, xero_times

FUZZ = settings(max_examples=50, deadline=None)  # four targets: the suite's time budget
links = st.fixed_dictionaries(
    {"TxnType": st.sampled_from(["Invoice", "CreditMemo", "JournalEntry", "Expense"]) | anything},
    optional={"TxnId": st.one_of(st.integers(1, 999).map(str), anything)},
)
qbo_lines = st.lists(
    st.fixed_dictionaries({"Amount": money, "LinkedTxn": st.lists(links, max_size=2)}) | anything, max_size=4
)
QBO_PAYMENT = {
    "Id": st.integers(1, 10**6).map(str),
    "CustomerRef": st.fixed_dictionaries({"value": st.integers(1, 99).map(str)}),
    "TotalAmt": money,
    "UnappliedAmt": money,
    "TxnDate": iso_days,
    "PaymentRefNum": st.text(max_size=8),
    "Line": qbo_lines,
    "PrivateNote": st.sampled_from(["Voided", "", "note"]),
    "MetaData": st.fixed_dictionaries({"LastUpdatedTime": qbo_times}),
    "status": st.sampled_from(["Deleted", "Active"]),
}
QBO_CREDIT = {
    "Id": st.integers(1, 10**6).map(str),
    "CustomerRef": st.fixed_dictionaries({"value": st.integers(1, 99).map(str)}),
    "TotalAmt": money,
    "Balance": money,
    "DocNumber": st.text(max_size=8),
    "TxnDate": iso_days,
    "PrivateNote": st.sampled_from(["Voided", "", "note"]),
    "MetaData": st.fixed_dictionaries({"LastUpdatedTime": qbo_times}),
    "status": st.sampled_from(["Deleted", "Active"]),
}
xero_invoice_link = st.fixed_dictionaries(
    {"InvoiceID": st.uuids().map(str)},
    optional={
        "Contact": st.fixed_dictionaries({"ContactID": st.uuids().map(str)}),
        "CurrencyCode": st.just("GBP"),
    },
)
XERO_PAYMENT = {
    "PaymentID": st.uuids().map(str),
    "PaymentType": st.sampled_from(["ACCRECPAYMENT", "ACCRECPAYMENT", "ACCPAYPAYMENT"]),
    "Status": st.sampled_from(["AUTHORISED", "DELETED"]),
    "Invoice": xero_invoice_link,
    "Date": xero_times,
    "Amount": money,
    "Reference": st.text(max_size=8),
    "UpdatedDateUTC": xero_times,
}
XERO_CREDIT = {
    "CreditNoteID": st.uuids().map(str),
    "Type": st.sampled_from(["ACCRECCREDIT", "ACCRECCREDIT", "ACCPAYCREDIT"]),
    "Status": st.sampled_from(["AUTHORISED", "PAID", "DRAFT", "VOIDED", "DELETED"]),
    "Contact": st.fixed_dictionaries({"ContactID": st.uuids().map(str)}),
    "CreditNoteNumber": st.text(max_size=8),
    "Date": xero_times,
    "Total": money,
    "RemainingCredit": money,
    "CurrencyCode": st.sampled_from(["GBP", "NZD"]),
    "Allocations": st.lists(
        st.fixed_dictionaries({"Amount": money, "Date": xero_times, "Invoice": xero_invoice_link}) | anything,
        max_size=3,
    ),
    "UpdatedDateUTC": xero_times,
}


def assert_money(*amounts) -> None:
    for amount in amounts:
        assert type(amount) is Decimal and amount.is_finite()  # never float, never NaN/Infinity


def assert_allocations(record) -> None:
    for allocation in record.allocations:
        assert allocation.source_kind in ("payment", "credit") and allocation.source_ref
        assert isinstance(allocation.invoice_ref, str) and allocation.invoice_ref.strip()
        assert_money(allocation.amount)
        assert allocation.allocated_on is None or type(allocation.allocated_on) is date


def assert_payment(record) -> None:
    assert type(record) is PaymentRecord and isinstance(record.ref, str) and record.ref
    assert_money(record.amount, record.unapplied)
    assert isinstance(record.currency, str)
    assert record.updated_at is None or record.updated_at.utcoffset() is not None
    assert_allocations(record)


def assert_credit(record) -> None:
    assert type(record) is CreditRecord and isinstance(record.ref, str) and record.ref
    assert_money(record.total, record.remaining)
    assert all(type(flag) is bool for flag in (record.voided, record.deleted, record.draft))
    assert_allocations(record)


@FUZZ
@given(raw=payloads(QBO_PAYMENT) | anything)
def test_quickbooks_payment(raw):
    record = outcome(lambda: qbo_ledger.to_payment(raw), qbo.Malformed)
    if record is not None:
        assert_payment(record)
        if not (record.voided or record.deleted):
            assert sum(a.amount for a in record.allocations if a.source_kind == "payment") >= 0


@FUZZ
@given(raw=payloads(QBO_CREDIT) | anything)
def test_quickbooks_credit_memo(raw):
    record = outcome(lambda: qbo_ledger.to_credit(raw), qbo.Malformed)
    if record is not None:
        assert_credit(record)


@FUZZ
@given(raw=payloads(XERO_PAYMENT) | anything)
def test_xero_payment(raw):
    record = outcome(lambda: xero_ledger.to_payment(raw), xero.MalformedRecord)
    if record is not None:  # None: a supplier payment
        assert_payment(record)
        assert record.unapplied == 0 and len(record.allocations) == 1


@FUZZ
@given(raw=payloads(XERO_CREDIT) | anything)
def test_xero_credit_note(raw):
    record = outcome(lambda: xero_ledger.to_credit(raw), xero.MalformedRecord)
    if record is not None:  # None: a supplier credit
        assert_credit(record)
