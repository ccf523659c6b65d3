"""Random vendor payloads into each system's normalizers: a record with exact money, or the
module's malformed-record error (which the connector quarantines); never anything else.

Payloads are what the clients hand over: JSON parsed with `parse_float=Decimal`, so numbers
arrive as int or Decimal (NaN/Infinity as float through `parse_constant`), plus wrong types,
missing fields, huge numbers, non-ASCII text and bad dates. JSON cannot carry an integer of
more than 4300 digits (`json.loads` refuses it before any normalizer runs), so none is sent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.quickbooks import normalize as qbo
from connectors.xero import normalize as xero
from portal_rules.records import CustomerRecord, InvoiceRecord

FUZZ = settings(max_examples=200, deadline=None)

# ---------------------------------------------------------------------------------------------
# Values: anything JSON (as the clients parse it) can hold, biased towards the nasty cases.

NASTY_STRINGS = [
    "", " ", "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1e999999", "-1e999999",
    "1e-999999", "12.34", "-0.00", "1_000", "0x10", "١٢٣", "12,50", "€12", "9" * 400,
    "2025-02-30", "2025-13-01", "0000-01-01", "9999-12-31", "2025-05-01T10:00:00", "2025-05-01Z",
    "2025-05-01+25:00",
    "2025-05-02T10:11:12-07:00", "2025-05-02T10:11:12.123456789Z", "yesterday",
    "/Date(1573755038314+0000)/", "/Date(-62135596800001)/", "/Date(253402300800000+0000)/",
    "/Date(99999999999999999999)/", "/Date(1573755038314+9999)/", "/Date()/",
    "Deleted", "EmailSent", "PrintComplete", "ACCREC", "ACCPAY", "AUTHORISED", "PAID", "VOIDED",
    "DELETED", "DRAFT", "ARCHIVED", "GDPRREQUEST", "Voided", "Café Müller", "名前", "\x00", "a\r\nb",
    "\ud7ff", "ann@example.com; BOB@x.example", "💥" * 50,
]  # fmt: skip
NASTY_NUMBERS = [
    0, -1, 2**63, -(2**63) - 1, 10**400, -(10**4299), Decimal("NaN"), Decimal("-Infinity"),
    Decimal("1E+999999"), Decimal("1E-999999"), Decimal("-0.00"), Decimal("123.4567890123456789"),
    float("nan"), float("inf"), float("-inf"), 1.5, 1e308, True, False,
]  # fmt: skip
# Valid ISO date-times whose UTC form falls outside the calendar (year 10000, year 0).
EXTREME_TIMES = ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(NASTY_NUMBERS),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def ref_object(key: str = "value"):
    return st.one_of(anything, st.fixed_dictionaries({}, optional={key: anything, "name": anything}))


@st.composite
def payloads(draw, fields: dict) -> dict:
    """A dict with (some of) the vendor's field names: valid values, nasty ones, or missing."""
    raw = {}
    for name, valid in fields.items():
        choice = draw(st.sampled_from(["valid", "valid", "nasty", "missing"]))
        if choice == "valid":
            raw[name] = draw(valid)
        elif choice == "nasty":
            raw[name] = draw(anything)
    for name, value in draw(st.dictionaries(st.text(max_size=10), anything, max_size=2)).items():
        raw.setdefault(name, value)
    return raw


money = st.one_of(st.decimals(min_value=-(10**9), max_value=10**9, places=2), st.integers(-(10**9), 10**9))
iso_days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)).map(date.isoformat)
qbo_times = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(datetime.isoformat)
xero_times = st.integers(-(10**12), 4 * 10**12).map(lambda ms: f"/Date({ms}+0000)/")

QBO_CUSTOMER = {
    "Id": st.integers(1, 10**6).map(str),
    "DisplayName": st.text(min_size=1, max_size=20),
    "Active": st.booleans(),
    "PrimaryEmailAddr": st.fixed_dictionaries({"Address": st.sampled_from(["a@x.example", "a@x; b@y", ""])}),
    "MetaData": st.fixed_dictionaries({"LastUpdatedTime": qbo_times}),
    "status": st.sampled_from(["Deleted", "Active"]),
}
QBO_INVOICE = {
    "Id": st.integers(1, 10**6).map(str),
    "CustomerRef": st.fixed_dictionaries({"value": st.integers(1, 99).map(str)}),
    "TotalAmt": money,
    "Balance": money,
    "DocNumber": st.text(max_size=8),
    "TxnDate": iso_days,
    "DueDate": iso_days,
    "CurrencyRef": st.fixed_dictionaries({"value": st.sampled_from(["USD", "EUR"])}),
    "EmailStatus": st.sampled_from(["EmailSent", "NotSet", "NeedToSend"]),
    "PrintStatus": st.sampled_from(["PrintComplete", "NotSet"]),
    "PrivateNote": st.sampled_from(["Voided", "", "note"]),
    "MetaData": st.fixed_dictionaries({"LastUpdatedTime": qbo_times}),
    "status": st.sampled_from(["Deleted", "Active"]),
}
XERO_CONTACT = {
    "ContactID": st.uuids().map(str),
    "Name": st.text(min_size=1, max_size=20),
    "ContactStatus": st.sampled_from(["ACTIVE", "ARCHIVED", "GDPRREQUEST"]),
    "EmailAddress": st.sampled_from(["a@x.example", "", "A@X.example"]),
    "ContactPersons": st.lists(
        st.fixed_dictionaries(
            {"EmailAddress": st.sampled_from(["p@x.example", ""]), "IncludeInEmails": st.booleans()}
        ),
        max_size=2,
    ),
    "IsCustomer": st.booleans(),
    "UpdatedDateUTC": xero_times,
}
XERO_INVOICE = {
    "InvoiceID": st.uuids().map(str),
    "Type": st.sampled_from(["ACCREC", "ACCREC", "ACCPAY"]),
    "Status": st.sampled_from(["AUTHORISED", "PAID", "DRAFT", "SUBMITTED", "VOIDED", "DELETED"]),
    "Contact": st.fixed_dictionaries({"ContactID": st.uuids().map(str)}),
    "InvoiceNumber": st.text(max_size=8),
    "Date": xero_times,
    "DueDate": xero_times,
    "CurrencyCode": st.sampled_from(["GBP", "NZD"]),
    "Total": money,
    "AmountDue": money,
    "SentToContact": st.booleans(),
    "UpdatedDateUTC": xero_times,
}

# ---------------------------------------------------------------------------------------------
# What a record that does come out must look like.


def assert_customer(record) -> None:
    assert type(record) is CustomerRecord
    assert isinstance(record.ref, str) and record.ref.strip()
    assert isinstance(record.display_name, str) and type(record.active) is bool
    assert all(isinstance(e, str) for e in record.emails)
    assert record.updated_at is None or record.updated_at.utcoffset() is not None


def assert_invoice(record) -> None:
    assert type(record) is InvoiceRecord
    assert isinstance(record.ref, str) and isinstance(record.customer_ref, str)
    for amount in (record.total, record.balance):
        assert type(amount) is Decimal and amount.is_finite()  # never float, never NaN/Infinity
    assert record.balance >= 0  # no system sends a negative balance: such an invoice is quarantined
    for day in (record.issue_date, record.due_date):
        assert day is None or type(day) is date
    assert record.updated_at is None or record.updated_at.utcoffset() is not None
    assert isinstance(record.currency, str) and record.currency
    assert all(
        type(flag) is bool for flag in (record.source_sent, record.voided, record.deleted, record.draft)
    )


def outcome(call, error: type[Exception]):
    """The record, or None when `call` raised `error`; any other exception fails the test."""
    try:
        return call()
    except error as exc:
        assert str(exc)  # the reason that goes into the quarantine table
        return None


# ---------------------------------------------------------------------------------------------
# QuickBooks Online


@FUZZ
@given(raw=payloads(QBO_CUSTOMER) | anything)
def test_quickbooks_customer(raw):
    record = outcome(lambda: qbo.to_customer(raw), qbo.Malformed)
    if record is not None:
        assert_customer(record)


@FUZZ
@given(raw=payloads(QBO_INVOICE) | anything)
def test_quickbooks_invoice(raw):
    record = outcome(lambda: qbo.to_invoice(raw), qbo.Malformed)
    if record is not None:
        assert_invoice(record)


@FUZZ
@given(rows=st.lists(payloads(QBO_INVOICE) | anything, max_size=5))
def test_quickbooks_page_quarantines_instead_of_failing(rows):
    records, quarantined = qbo.normalize_all("invoices", rows, "USD")
    assert len(records) + len(quarantined) == len(rows)
    for record in records:
        assert_invoice(record)
    assert all(q.reason and q.entity == "invoices" for q in quarantined)


# ---------------------------------------------------------------------------------------------
# Xero


@FUZZ
@given(raw=payloads(XERO_CONTACT) | anything)
def test_xero_contact(raw):
    record = outcome(lambda: xero.to_customer(raw), xero.MalformedRecord)
    if record is not None:
        assert_customer(record)


@FUZZ
@given(raw=payloads(XERO_INVOICE) | anything)
def test_xero_invoice(raw):
    record = outcome(lambda: xero.to_invoice(raw), xero.MalformedRecord)
    if record is not None:  # None is also how a bill (ACCPAY) is skipped
        assert_invoice(record)


# ---------------------------------------------------------------------------------------------
# The specific nasties, each through each money field and date field.


def with_field(base: dict, name: str, value) -> dict:
    return {**base, name: value}


QBO_VALID = {
    "Id": "130", "CustomerRef": {"value": "7"}, "TotalAmt": Decimal("10.00"), "Balance": Decimal("5.00"),
    "TxnDate": "2025-05-01", "DueDate": "2025-05-31",
    "MetaData": {"LastUpdatedTime": "2025-05-02T10:11:12-07:00"},
}  # fmt: skip
XERO_VALID = {
    "InvoiceID": "i-1", "Type": "ACCREC", "Status": "AUTHORISED", "Contact": {"ContactID": "c-1"},
    "CurrencyCode": "GBP", "Total": Decimal("10.00"), "AmountDue": Decimal("5.00"),
    "Date": "/Date(1573755038314+0000)/", "DueDate": "/Date(1573755038314+0000)/",
    "UpdatedDateUTC": "/Date(1573755038314+0000)/",
}  # fmt: skip


NASTY = [*NASTY_STRINGS, *NASTY_NUMBERS, None, [], {}, ["a"], {"value": "1"}, {"ContactID": ""}]
QBO_CUSTOMER_VALID = {
    "Id": "7", "DisplayName": "Café Müller", "Active": True, "PrimaryEmailAddr": {"Address": "a@x.example"},
    "MetaData": {"LastUpdatedTime": "2025-05-02T10:11:12-07:00"},
}  # fmt: skip
XERO_CONTACT_VALID = {
    "ContactID": "c-1", "Name": "Café Müller", "ContactStatus": "ACTIVE", "EmailAddress": "a@x.example",
    "ContactPersons": [{"EmailAddress": "p@x.example", "IncludeInEmails": True}],
    "UpdatedDateUTC": "/Date(1573755038314+0000)/",
}  # fmt: skip
# Where a field holds an object, the nasty value also goes one level down.
NESTED = {
    "MetaData": "LastUpdatedTime", "CustomerRef": "value", "CurrencyRef": "value",
    "PrimaryEmailAddr": "Address", "Contact": "ContactID",
}  # fmt: skip
SYSTEMS = {
    "quickbooks-invoice": (qbo.to_invoice, qbo.Malformed, QBO_VALID, assert_invoice,
                           ["DocNumber", "EmailStatus", "PrintStatus", "PrivateNote", "status"]),
    "quickbooks-customer": (qbo.to_customer, qbo.Malformed, QBO_CUSTOMER_VALID, assert_customer, ["status"]),
    "xero-invoice": (xero.to_invoice, xero.MalformedRecord, XERO_VALID, assert_invoice,
                     ["InvoiceNumber", "SentToContact"]),
    "xero-contact": (xero.to_customer, xero.MalformedRecord, XERO_CONTACT_VALID, assert_customer,
                     ["IsCustomer"]),
}  # fmt: skip


def variants(base: dict, extra_fields: list[str], values: list):
    for field in [*base, *extra_fields]:
        for value in values:
            yield field, value
            if field in NESTED:
                yield field, {NESTED[field]: value}
            if field == "ContactPersons":
                yield field, [{"EmailAddress": value, "IncludeInEmails": True}]


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_each_nasty_value_in_each_field(system):
    """Every value above in every field of a valid record (and one level down), exhaustively."""
    normalize, error, base, check, extra = SYSTEMS[system]
    surprises = []
    for field, value in variants(base, extra, NASTY):
        try:
            record = normalize(with_field(base, field, value))
        except error:
            continue
        except Exception as exc:  # noqa: BLE001 - collected, then reported all at once
            surprises.append(f"{field}={value!r:.60}: {type(exc).__name__}: {exc}")
            continue
        if record is not None:
            check(record)
    assert surprises == []


@pytest.mark.parametrize("value", EXTREME_TIMES, ids=["year-10000-in-utc", "year-0-in-utc"])
@pytest.mark.parametrize("field", ["Date", "DueDate", "UpdatedDateUTC"])
def test_xero_dates_outside_the_calendar_are_malformed(field, value):
    with pytest.raises(xero.MalformedRecord, match=field):
        xero.to_invoice(with_field(XERO_VALID, field, value))


@pytest.mark.parametrize("value", EXTREME_TIMES, ids=["year-10000-in-utc", "year-0-in-utc"])
def test_quickbooks_times_outside_the_calendar_are_quarantined(value):
    row = with_field(QBO_VALID, "MetaData", {"LastUpdatedTime": value})
    records, quarantined = qbo.normalize_all("invoices", [row], "USD")
    assert records == [] and [q.ref for q in quarantined] == ["130"]


def test_the_valid_bases_are_valid():
    assert qbo.to_invoice(QBO_VALID).balance == Decimal("5.00")
    assert xero.to_invoice(XERO_VALID).balance == Decimal("5.00")
