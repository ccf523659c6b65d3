"""Payments and credits, QuickBooks and Xero JSON -> records, as tables (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connectors.quickbooks.cursor import Listing
from connectors.quickbooks.listed import listed
from connectors.quickbooks.normalize import Malformed
from connectors.quickbooks.normalize_ledger import to_credit as qbo_credit
from connectors.quickbooks.normalize_ledger import to_payment as qbo_payment
from connectors.quickbooks.pull import CDC_ENTITIES, statement
from connectors.xero.normalize import MalformedRecord
from connectors.xero.normalize_ledger import to_credit as xero_credit
from connectors.xero.normalize_ledger import to_payment as xero_payment
from portal_rules.records import AllocationRecord

D = Decimal
QBO_PAYMENT = """{
  "Id": "901", "TxnDate": "2025-05-03", "TotalAmt": 70.0, "UnappliedAmt": 10.0, "PaymentRefNum": "4711",
  "CustomerRef": {"value": "7", "name": "Café Müller"}, "CurrencyRef": {"value": "EUR"},
  "Line": [
    {"Amount": 50.0, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}], "LineEx": {"any": []}},
    {"Amount": 30.0, "LinkedTxn": [{"TxnId": "131", "TxnType": "Invoice"}]},
    {"Amount": 20.0, "LinkedTxn": [{"TxnId": "C5", "TxnType": "CreditMemo"}]},
    {"Amount": 15.0, "LinkedTxn": [{"TxnId": "C6", "TxnType": "CreditMemo"}]},
    {"Amount": 3.0, "LinkedTxn": [{"TxnId": "77", "TxnType": "Expense"}]}
  ],
  "MetaData": {"CreateTime": "2025-05-03T09:00:00-07:00", "LastUpdatedTime": "2025-05-03T10:11:12-07:00"}
}"""
QBO_CREDIT = """{
  "Id": "C5", "DocNumber": "C1001", "TxnDate": "2025-04-30", "TotalAmt": 40.0, "Balance": 5.0,
  "RemainingCredit": 5.0, "CustomerRef": {"value": "7"}, "CurrencyRef": {"value": "EUR"},
  "MetaData": {"LastUpdatedTime": "2025-05-03T10:11:12-07:00"}
}"""
XERO_PAYMENT = """{
  "PaymentID": "p-1", "Date": "/Date(1746230400000+0000)/", "Amount": 12.50, "Reference": "Transfer 12",
  "PaymentType": "ACCRECPAYMENT", "Status": "AUTHORISED", "UpdatedDateUTC": "/Date(1746267072000+0000)/",
  "Invoice": {"InvoiceID": "i-1", "InvoiceNumber": "INV-1", "CurrencyCode": "GBP",
              "Contact": {"ContactID": "c-1", "Name": "Ørsted"}}
}"""
XERO_CREDIT = """{
  "Type": "ACCRECCREDIT", "CreditNoteID": "n-1", "CreditNoteNumber": "CN-0001", "Status": "AUTHORISED",
  "Contact": {"ContactID": "c-1"}, "Date": "/Date(1746144000000+0000)/", "Total": 30.00,
  "RemainingCredit": 5.00, "CurrencyCode": "GBP", "UpdatedDateUTC": "/Date(1746267072000+0000)/",
  "Allocations": [
    {"Amount": 20.00, "Date": "/Date(1746230400000+0000)/", "Invoice": {"InvoiceID": "i-1"}},
    {"Amount": 5.00, "Date": "/Date(1746230400000+0000)/", "Invoice": {"InvoiceID": "i-2"}},
    {"Amount": 9.00, "Date": "/Date(1746230400000+0000)/", "Invoice": {"InvoiceID": "i-3"}, "IsDeleted": true}
  ]
}"""


LINK = {"TxnId": "1", "TxnType": "Invoice"}
UNKNOWN = {"TxnType": "Invoice"}  # a line linking no invoice id


def raw(text: str, **changes) -> dict:
    data = json.loads(text, parse_float=Decimal)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_quickbooks_payment_funds_invoice_lines_from_its_credit_lines_first():
    payment = qbo_payment(raw(QBO_PAYMENT))
    on = date(2025, 5, 3)
    assert (payment.ref, payment.customer_ref, payment.paid_on, payment.currency) == ("901", "7", on, "EUR")
    assert (payment.amount, payment.unapplied, payment.reference) == (D("70.0"), D("10.0"), "4711")
    assert not (payment.credit_only or payment.voided or payment.deleted)
    assert payment.updated_at == datetime(2025, 5, 3, 17, 11, 12, tzinfo=UTC)
    assert payment.allocations == (
        AllocationRecord("credit", "C5", "130", D("20.0"), on),
        AllocationRecord("credit", "C6", "130", D("15.0"), on),
        AllocationRecord("payment", "901", "130", D("15.0"), on),
        AllocationRecord("payment", "901", "131", D("30.0"), on),
    )


def test_quickbooks_credit_only_payment():
    lines = [
        {"Amount": 25, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
        {"Amount": 25, "LinkedTxn": [{"TxnId": "C5", "TxnType": "CreditMemo"}]},
    ]
    payment = qbo_payment(raw(QBO_PAYMENT, TotalAmt=0, UnappliedAmt=0, Line=lines))
    assert payment.credit_only and payment.amount == 0
    assert payment.allocations == (AllocationRecord("credit", "C5", "130", D("25"), date(2025, 5, 3)),)


def _typed_payment(data: dict):
    """The same payment through the typed fast path a full listing's pages take."""
    page = json.dumps({"QueryResponse": {"Payment": [data], "startPosition": 1}}, default=str)
    found = listed(page.encode(), "payments", "USD")
    assert found is not None, "the typed reader declined the page"
    (payment,) = found.records
    return payment


def _line(amount, kind: str, txn_id: str) -> dict:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": kind}]}


JE = "JournalEntry"
ON = date(2025, 5, 3)


@pytest.mark.parametrize("read", [qbo_payment, _typed_payment], ids=["normalizer", "typed"])
@pytest.mark.parametrize(
    ("total", "unapplied", "lines", "expected"),
    [
        (  # $150 invoice: $100 written off by a journal entry, $50 paid
            50, 0, [_line(150, "Invoice", "130"), _line(100, JE, "J1")],
            [("journal", "J1", "130", "100"), ("payment", "901", "130", "50")],
        ),
        (  # a write-off alone: no money moves, and the credit is still the journal entry's
            0, 0, [_line(80, "Invoice", "130"), _line(80, JE, "J1")],
            [("journal", "J1", "130", "80")],
        ),
        (  # credit memo first, then the journal entry's credit, then money; $5 left unapplied
            25, 5, [_line(60, "Invoice", "130"), _line(30, "CreditMemo", "C5"), _line(20, JE, "J1")],
            [("credit", "C5", "130", "30"), ("journal", "J1", "130", "10"), ("payment", "901", "130", "20")],
        ),
        (  # the journal entry is a charge the payment pays: the invoice gets money only
            130, 0, [_line(100, "Invoice", "130"), _line(30, JE, "J1")],
            [("payment", "901", "130", "100")],
        ),
        (  # two journal credits, in line order, over two invoices
            0, 0,
            [_line(40, "Invoice", "130"), _line(30, "Invoice", "131"),
             _line(50, JE, "J1"), _line(20, JE, "J2")],
            [("journal", "J1", "130", "40"), ("journal", "J1", "131", "10"), ("journal", "J2", "131", "20")],
        ),
        (  # a zero journal line before the write-off does not hide it
            50, 0, [_line(0, JE, "J0"), _line(100, JE, "J1"), _line(150, "Invoice", "130")],
            [("journal", "J1", "130", "100"), ("payment", "901", "130", "50")],
        ),
    ],
    ids=["write-off-and-money", "write-off-only", "memo-journal-money", "journal-charge", "two-journals",
         "zero-journal-first"],
)  # fmt: skip
def test_quickbooks_journal_entry_credit_is_the_journal_entrys_not_the_payments_money(
    read, total, unapplied, lines, expected
):
    """A payment's journal-entry lines supply what its invoice lines receive beyond its
    credit memos and its money; before, that was shown as money the customer paid."""
    payment = read(raw(QBO_PAYMENT, TotalAmt=total, UnappliedAmt=unapplied, Line=lines))
    assert payment.allocations == tuple(AllocationRecord(k, s, i, D(a), ON) for k, s, i, a in expected)
    assert payment.credit_only == (total == 0)


def test_quickbooks_a_link_whose_type_is_not_text_is_ignored_not_a_crash():
    odd = {"Amount": 5, "LinkedTxn": [{"TxnId": "9", "TxnType": ["Invoice"]}]}
    lines = [_line(40, "Invoice", "130"), odd]
    payment = qbo_payment(raw(QBO_PAYMENT, TotalAmt=40, UnappliedAmt=0, Line=lines))
    assert payment.allocations == (AllocationRecord("payment", "901", "130", D(40), ON),)


ZEROED_LINES = [
    {"Amount": 0, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
    {"Amount": 0, "LinkedTxn": [{"TxnId": "C5", "TxnType": "CreditMemo"}]},
]


@pytest.mark.parametrize(
    ("changes", "voided", "deleted", "allocated"),
    [
        ({"PrivateNote": "Voided", "TotalAmt": 0, "UnappliedAmt": 0, "Line": []}, True, False, 0),
        # Intuit: a void keeps the transaction and zeroes "all amounts", its lines' too
        ({"PrivateNote": "Voided", "TotalAmt": 0, "UnappliedAmt": 0, "Line": ZEROED_LINES}, True, False, 0),
        # a live credit application (no money moves) whose own note begins "Voided": not a void
        ({"PrivateNote": "Voided check 1043", "TotalAmt": 0, "UnappliedAmt": 0}, False, False, 4),
        ({"status": "Deleted"}, False, True, 0),
        ({"Line": ...}, False, False, 0),
    ],
    ids=["voided", "voided-lines-kept", "credit-application-noted-voided", "deleted-in-cdc", "no-lines"],
)
def test_quickbooks_payment_liveness(changes, voided, deleted, allocated):
    payment = qbo_payment(raw(QBO_PAYMENT, **changes))
    assert (payment.voided, payment.deleted, len(payment.allocations)) == (voided, deleted, allocated)


def test_quickbooks_deleted_payment_needs_only_its_id():
    payment = qbo_payment(
        {"Id": "9", "status": "Deleted", "MetaData": {"LastUpdatedTime": "2025-05-03T10:11:12Z"}}
    )
    assert payment.deleted and payment.ref == "9" and payment.allocations == ()


def test_quickbooks_credit_memo():
    credit = qbo_credit(raw(QBO_CREDIT))
    assert (credit.ref, credit.customer_ref, credit.doc_number, credit.issue_date) == (
        "C5",
        "7",
        "C1001",
        date(2025, 4, 30),
    )
    assert (credit.total, credit.remaining, credit.currency) == (D("40.0"), D("5.0"), "EUR")
    assert not credit.voided and credit.allocations == ()
    voided = qbo_credit(raw(QBO_CREDIT, TotalAmt=0, Balance=0, PrivateNote="Voided"))
    assert voided.voided
    assert qbo_credit(raw(QBO_CREDIT, Balance=..., RemainingCredit=7)).remaining == 7


@pytest.mark.parametrize(
    ("parse", "payload", "reason"),
    [
        (qbo_payment, raw(QBO_PAYMENT, Id=...), "missing Id"),
        (qbo_payment, raw(QBO_PAYMENT, CustomerRef=...), "missing CustomerRef"),
        (qbo_payment, raw(QBO_PAYMENT, TotalAmt="lots"), "non-numeric TotalAmt"),
        (qbo_payment, raw(QBO_PAYMENT, Line=[{"Amount": 1, "LinkedTxn": [UNKNOWN]}]), "without TxnId"),
        (qbo_payment, raw(QBO_PAYMENT, Line=[{"Amount": "x", "LinkedTxn": [LINK]}]), "non-numeric Amount"),
        (qbo_payment, raw(QBO_PAYMENT, Line="nope"), "Line is not a list"),
        (qbo_credit, raw(QBO_CREDIT, Balance=None, RemainingCredit=None), "missing RemainingCredit"),
        (qbo_credit, raw(QBO_CREDIT, TotalAmt=float("nan")), "non-numeric TotalAmt"),
        (qbo_payment, raw(QBO_PAYMENT, TotalAmt=D("-12.50")), "negative TotalAmt -12.50"),
        (qbo_payment, raw(QBO_PAYMENT, UnappliedAmt=-1), "negative UnappliedAmt -1"),
        (qbo_credit, raw(QBO_CREDIT, TotalAmt="-40.00"), "negative TotalAmt -40.00"),
        (qbo_credit, raw(QBO_CREDIT, Balance=D("-0.01")), "negative Balance -0.01"),
        (qbo_credit, raw(QBO_CREDIT, Balance=..., RemainingCredit=-5), "negative RemainingCredit -5"),
    ],
    ids=[
        "no-id",
        "no-customer",
        "amount-text",
        "unknown-invoice",
        "line-amount",
        "lines",
        "no-balance",
        "nan",
        "negative-payment",
        "negative-unapplied",
        "negative-credit-total",
        "negative-credit-balance",
        "negative-remaining-credit",
    ],
)
def test_quickbooks_malformed(parse, payload, reason):
    with pytest.raises(Malformed, match=reason):
        parse(payload)


def test_xero_payment():
    payment = xero_payment(raw(XERO_PAYMENT))
    on = date(2025, 5, 3)
    assert (payment.ref, payment.customer_ref, payment.paid_on, payment.currency) == ("p-1", "c-1", on, "GBP")
    assert (payment.amount, payment.unapplied, payment.reference) == (D("12.50"), 0, "Transfer 12")
    assert payment.allocations == (AllocationRecord("payment", "p-1", "i-1", D("12.50"), on),)
    assert payment.updated_at == datetime(2025, 5, 3, 10, 11, 12, tzinfo=UTC)
    assert xero_payment(raw(XERO_PAYMENT, Status="DELETED")).deleted
    assert xero_payment(raw(XERO_PAYMENT, PaymentType="ACCPAYPAYMENT")) is None
    assert xero_payment(raw(XERO_PAYMENT, PaymentType="ARCREDITPAYMENT")) is None


def test_xero_credit_note_skips_deleted_allocations():
    credit = xero_credit(raw(XERO_CREDIT))
    on = date(2025, 5, 3)
    assert (credit.ref, credit.customer_ref, credit.doc_number, credit.issue_date) == (
        "n-1",
        "c-1",
        "CN-0001",
        date(2025, 5, 2),
    )
    assert (credit.total, credit.remaining, credit.currency) == (D("30.00"), D("5.00"), "GBP")
    assert credit.allocations == (
        AllocationRecord("credit", "n-1", "i-1", D("20.00"), on),
        AllocationRecord("credit", "n-1", "i-2", D("5.00"), on),
    )
    assert xero_credit(raw(XERO_CREDIT, Type="ACCPAYCREDIT")) is None


@pytest.mark.parametrize(
    ("status", "flags"),
    [
        ("AUTHORISED", (False, False, False)),
        ("PAID", (False, False, False)),
        ("DRAFT", (False, False, True)),
        ("SUBMITTED", (False, False, True)),
        ("VOIDED", (True, False, False)),
        ("DELETED", (False, True, False)),
    ],
    ids=["authorised", "paid", "draft", "submitted", "voided", "deleted"],
)
def test_xero_credit_note_status(status, flags):
    credit = xero_credit(raw(XERO_CREDIT, Status=status, RemainingCredit=... if flags != (False,) * 3 else 5))
    assert (credit.voided, credit.deleted, credit.draft) == flags


@pytest.mark.parametrize(
    ("parse", "payload", "reason"),
    [
        (xero_payment, raw(XERO_PAYMENT, PaymentID=...), "missing PaymentID"),
        (xero_payment, raw(XERO_PAYMENT, Invoice={"Contact": {"ContactID": "c"}}), "Invoice.InvoiceID"),
        (xero_payment, raw(XERO_PAYMENT, Invoice=None), "Invoice is not a JSON object"),
        (xero_payment, raw(XERO_PAYMENT, Amount="NaN"), "Amount is not a number"),
        (xero_credit, raw(XERO_CREDIT, CreditNoteID=""), "missing CreditNoteID"),
        (xero_credit, raw(XERO_CREDIT, Allocations=[{"Amount": 1}]), "Allocation.Invoice is not"),
        (xero_credit, raw(XERO_CREDIT, Allocations=[{"Amount": 1, "Invoice": {}}]), "Invoice.InvoiceID"),
        (xero_credit, raw(XERO_CREDIT, Total=True), "Total is not a number"),
        (xero_credit, raw(XERO_CREDIT, Allocations={}), "Allocations is not a list"),
        (xero_payment, raw(XERO_PAYMENT, PaymentType=...), "missing PaymentType"),
        (xero_credit, raw(XERO_CREDIT, Type=None), "missing Type"),
        (
            xero_credit,
            raw(XERO_CREDIT, Type="ACCREC"),
            "Type is neither ACCRECCREDIT nor ACCPAYCREDIT: 'ACCREC'",
        ),
        (xero_payment, raw(XERO_PAYMENT, Amount=D("-12.50")), "Amount is negative: -12.50"),
        (xero_credit, raw(XERO_CREDIT, Total=-30), "Total is negative: -30"),
        (xero_credit, raw(XERO_CREDIT, RemainingCredit="-5.00"), "RemainingCredit is negative: -5.00"),
        (
            xero_credit,
            raw(XERO_CREDIT, Allocations=[{"Amount": D("-20.00"), "Invoice": {"InvoiceID": "i-1"}}]),
            "Amount is negative: -20.00",
        ),
    ],
    ids=[
        "no-id",
        "no-invoice-id",
        "no-invoice",
        "nan",
        "credit-no-id",
        "alloc-no-invoice",
        "alloc-no-id",
        "bool-total",
        "allocations-shape",
        "payment-no-type",
        "credit-no-type",
        "credit-unknown-type",
        "negative-payment",
        "negative-credit-total",
        "negative-remaining-credit",
        "negative-allocation",
    ],
)
def test_xero_malformed(parse, payload, reason):
    with pytest.raises(MalformedRecord, match=reason):
        parse(payload)


def test_xero_types_are_read_in_any_case_and_other_kinds_are_left_out():
    assert xero_payment(raw(XERO_PAYMENT, PaymentType="accrecpayment")) == xero_payment(raw(XERO_PAYMENT))
    assert xero_credit(raw(XERO_CREDIT, Type="accreccredit")) == xero_credit(raw(XERO_CREDIT))
    assert xero_payment(raw(XERO_PAYMENT, PaymentType="ARCREDITPAYMENT")) is None  # a credit note's refund
    assert xero_credit(raw(XERO_CREDIT, Type="ACCPAYCREDIT")) is None  # a supplier's


def test_quickbooks_pulls_payments_and_credit_memos_like_invoices():
    assert statement(Listing("full", "payments"), 1000) == (
        "SELECT * FROM Payment ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"
    )
    changed = Listing("changed", "credits", 3, since="2025-06-01T00:00:00Z", after="2025-06-02T00:00:00Z")
    assert statement(changed, 1000) == (
        "SELECT * FROM CreditMemo WHERE MetaData.LastUpdatedTime >= '2025-06-02T00:00:00Z' "
        "ORDERBY MetaData.LastUpdatedTime, Id STARTPOSITION 3 MAXRESULTS 1000"
    )
    assert CDC_ENTITIES == "Customer,Invoice,Payment,CreditMemo"
    assert Listing("full", "invoices").next_entity().entity == "payments"


@pytest.mark.parametrize(
    ("normalize", "text", "ref", "expected"),
    [
        (qbo_payment, QBO_PAYMENT, {"value": 978}, "CurrencyRef is not a currency code: 978"),
        (qbo_credit, QBO_CREDIT, {"value": "Euro"}, "CurrencyRef is not a currency code: 'Euro'"),
        (qbo_payment, QBO_PAYMENT, "EUR", "CurrencyRef is not a reference: 'EUR'"),
    ],
)
def test_quickbooks_a_currency_that_is_no_code_quarantines_the_record(normalize, text, ref, expected):
    """Balances are added up per currency: "978" or "Euro" would be a currency of its own."""
    with pytest.raises(Malformed) as raised:
        normalize(raw(text, CurrencyRef=ref))
    assert str(raised.value) == expected
    assert normalize(raw(text, CurrencyRef={"value": " EUR "})).currency == "EUR"
    assert normalize(raw(text, CurrencyRef={"value": ""}), home_currency="GBP").currency == "GBP"


@pytest.mark.parametrize("normalize", [xero_payment, xero_credit])
def test_xero_a_currency_that_is_no_code_quarantines_the_record(normalize):
    text = XERO_PAYMENT if normalize is xero_payment else XERO_CREDIT
    data = raw(text)
    holder = data["Invoice"] if normalize is xero_payment else data
    holder["CurrencyCode"] = "gbp"
    with pytest.raises(MalformedRecord) as raised:
        normalize(data)
    assert "is not a currency code: 'gbp'" in str(raised.value)


@pytest.mark.parametrize(
    ("parse", "text", "status", "reason"),
    [
        (xero_credit, XERO_CREDIT, "PENDING", "unknown credit note Status 'PENDING'"),
        (xero_credit, XERO_CREDIT, "", "unknown credit note Status ''"),
        (xero_credit, XERO_CREDIT, 3, "Status is not text: 3"),
        (xero_payment, XERO_PAYMENT, "PAID", "unknown payment Status 'PAID'"),
        (xero_payment, XERO_PAYMENT, "", "unknown payment Status ''"),
        (xero_payment, XERO_PAYMENT, ..., "missing payment Status"),
        (xero_payment, XERO_PAYMENT, 3, "Status is not text: 3"),
    ],
    ids=["credit-unknown", "credit-empty", "credit-number", "payment-unknown", "payment-empty",
         "payment-missing", "payment-number"],
)  # fmt: skip
def test_xero_an_unknown_status_quarantines_the_record(parse, text, status, reason):
    """Read as a draft (credit) or as live (payment), it would hide or count money unseen."""
    with pytest.raises(MalformedRecord) as raised:
        parse(raw(text, Status=status))
    assert str(raised.value) == reason


def test_xero_a_credit_note_without_a_status_is_a_draft_as_an_invoice_is():
    assert xero_credit(raw(XERO_CREDIT, Status=...)).draft
