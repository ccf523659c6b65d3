"""QBO JSON -> records, as tables: what each field means, and what gets quarantined (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connectors.base import ConnectorError
from connectors.quickbooks import create
from connectors.quickbooks.client import api_base
from connectors.quickbooks.cursor import (
    VERSION,
    Cdc,
    Cursor,
    CursorError,
    Done,
    Listing,
    OutdatedCursor,
    start,
)
from connectors.quickbooks.normalize import Malformed, normalize_all, to_customer, to_invoice
from connectors.quickbooks.pull import statement
from connectors.registry import ConnectorSettings
from portal_rules.records import Quarantined

INVOICE = """{
  "Id": "130", "SyncToken": "2", "DocNumber": "1030", "TxnDate": "2025-05-01", "DueDate": "2025-05-31",
  "CurrencyRef": {"value": "EUR", "name": "Euro"}, "CustomerRef": {"value": "7", "name": "Café Müller"},
  "TotalAmt": 1234.56, "Balance": 0.1, "EmailStatus": "NeedToSend", "PrintStatus": "PrintComplete",
  "MetaData": {"CreateTime": "2025-05-01T09:00:00-07:00", "LastUpdatedTime": "2025-05-02T10:11:12-07:00"}
}"""
CUSTOMER = """{
  "Id": "7", "DisplayName": "Café Müller", "Active": false,
  "PrimaryEmailAddr": {"Address": "a@cafe.example; B@Cafe.example"},
  "MetaData": {"LastUpdatedTime": "2025-05-02T10:11:12-07:00"}
}"""


def raw(text: str, **changes) -> dict:
    data = json.loads(text, parse_float=Decimal)  # as the client's SDK parses it
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_invoice_fields():
    invoice = to_invoice(raw(INVOICE))
    assert invoice.ref == "130" and invoice.customer_ref == "7" and invoice.doc_number == "1030"
    assert (invoice.issue_date, invoice.due_date) == (date(2025, 5, 1), date(2025, 5, 31))
    assert invoice.currency == "EUR"
    assert (invoice.total, invoice.balance) == (Decimal("1234.56"), Decimal("0.1"))
    assert isinstance(invoice.total, Decimal) and str(invoice.balance) == "0.1"
    assert invoice.source_sent and not invoice.voided and not invoice.deleted
    assert invoice.updated_at == datetime(2025, 5, 2, 17, 11, 12, tzinfo=UTC)


def test_customer_fields_keep_the_email_field_as_spelled():
    customer = to_customer(raw(CUSTOMER))
    assert (customer.ref, customer.display_name, customer.active) == ("7", "Café Müller", False)
    assert customer.emails == ("a@cafe.example; B@Cafe.example",)
    assert customer.updated_at == datetime(2025, 5, 2, 17, 11, 12, tzinfo=UTC)
    assert to_customer(raw(CUSTOMER, PrimaryEmailAddr=...)).emails == ()


@pytest.mark.parametrize(
    ("changes", "sent", "voided"),
    [
        ({"EmailStatus": "EmailSent", "PrintStatus": "NotSet"}, True, False),
        ({"EmailStatus": "NeedToSend", "PrintStatus": "NotSet"}, False, False),
        ({"EmailStatus": ..., "PrintStatus": ...}, False, False),
        ({"PrivateNote": "Voided", "TotalAmt": 0, "Balance": 0}, True, True),
        ({"PrivateNote": "Voided by Jo", "TotalAmt": Decimal("5.00"), "Balance": 0}, True, False),
        ({"TotalAmt": 0, "Balance": 0}, True, False),
    ],
    ids=["emailed", "send-later", "no-status", "voided", "note-but-amount", "zero-invoice"],
)
def test_sent_and_voided_signals(changes, sent, voided):
    invoice = to_invoice(raw(INVOICE, **changes))
    assert (invoice.source_sent, invoice.voided) == (sent, voided)


def test_currency_defaults_to_the_home_currency():
    assert to_invoice(raw(INVOICE, CurrencyRef=...), home_currency="GBP").currency == "GBP"
    assert to_invoice(raw(INVOICE, CurrencyRef={}), home_currency="GBP").currency == "GBP"


@pytest.mark.parametrize("value", [840, "840", "US Dollar", "usd", {"value": "USD"}])
def test_a_currency_that_is_no_code_is_the_invoices_fault(value):
    # it was stored as given ("840") or taken for the home currency ({...}): either would add
    # the invoice's balance into another currency's
    with pytest.raises(Malformed, match="CurrencyRef is not a currency code"):
        to_invoice(raw(INVOICE, CurrencyRef={"value": value}))


def test_cdc_deletions():
    gone = {"domain": "QBO", "status": "Deleted", "Id": "130",
            "MetaData": {"LastUpdatedTime": "2025-06-01T10:00:00-07:00"}}  # fmt: skip
    invoice = to_invoice(gone)
    assert invoice.deleted and invoice.ref == "130" and invoice.total == 0 and not invoice.source_sent
    assert invoice.updated_at == datetime(2025, 6, 1, 17, tzinfo=UTC)
    customer = to_customer({**gone, "Id": "7"})
    assert customer.deleted and customer.ref == "7" and not customer.active


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Id": ...}, "missing Id"),
        ({"Id": "  "}, "missing Id"),
        ({"CustomerRef": ...}, "missing CustomerRef"),
        ({"CustomerRef": {"value": ""}}, "missing CustomerRef"),
        ({"TxnDate": "2025-02-30"}, "bad TxnDate '2025-02-30'"),
        ({"DueDate": "31/05/2025"}, "bad DueDate '31/05/2025'"),
        ({"TotalAmt": "twelve"}, "non-numeric TotalAmt 'twelve'"),
        ({"TotalAmt": float("nan")}, "non-numeric TotalAmt nan"),
        ({"Balance": ...}, "missing Balance"),
        ({"Balance": True}, "non-numeric Balance True"),
        ({"Balance": Decimal("-0.01")}, "negative Balance -0.01"),
        ({"Balance": -5}, "negative Balance -5"),
        ({"Balance": "-5.00"}, "negative Balance -5.00"),
        ({"MetaData": {"LastUpdatedTime": "yesterday"}}, "bad MetaData.LastUpdatedTime 'yesterday'"),
        ({"MetaData": {"LastUpdatedTime": "2025-05-02T10:11:12"}}, "bad MetaData.LastUpdatedTime"),
    ],
    ids=["no-id", "blank-id", "no-customer", "blank-customer", "bad-txn-date", "bad-due-date",
         "text-amount", "nan-amount", "no-balance", "bool-balance", "negative-balance",
         "negative-integer-balance", "negative-text-balance", "bad-updated", "naive-updated"],
)  # fmt: skip
def test_malformed_invoices_say_why(changes, reason):
    with pytest.raises(Malformed, match=reason.replace("(", r"\(")):
        to_invoice(raw(INVOICE, **changes))


def test_a_zero_balance_spelled_negative_is_zero():
    assert to_invoice(raw(INVOICE, Balance=Decimal("-0.00"))).balance == 0


def test_dates_with_an_offset_are_read_as_dates():
    assert to_invoice(raw(INVOICE, TxnDate="2025-05-01-07:00")).issue_date == date(2025, 5, 1)
    assert to_invoice(raw(INVOICE, DueDate=...)).due_date is None


def test_a_page_quarantines_what_it_cannot_read():
    rows = [raw(INVOICE), raw(INVOICE, Id="131", TotalAmt="x"), raw(INVOICE, Id=...), "junk"]
    records, quarantined = normalize_all("invoices", rows, "USD")
    assert [r.ref for r in records] == ["130"]
    assert quarantined == [
        Quarantined("invoices", "131", "non-numeric TotalAmt 'x'"),
        Quarantined("invoices", None, "missing Id"),
        Quarantined("invoices", None, "not a JSON object: str"),
    ]
    customers, quarantined = normalize_all("customers", [raw(CUSTOMER, DisplayName="")], "USD")
    assert customers == [] and quarantined == [Quarantined("customers", "7", "missing DisplayName")]


# -- the cursor and the statements it leads to ------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        Listing("full"),
        Listing("full", "invoices", 2001, seen="2025-06-02T08:30:00-07:00"),
        Listing("changed", "customers", 3, since="2025-04-01T00:00:00+00:00",
                after="2025-04-02T10:00:00-07:00", seen="2025-06-02T08:30:00-07:00"),
        Listing("second", "invoices", 1001, since="2025-06-01T10:00:00-07:00"),
        Cdc("2025-06-01T10:00:00-07:00"),
        Done("2025-06-02T08:30:00-07:00"),
    ],
    ids=["full-start", "full-invoices", "changed", "second", "cdc", "done"],
)  # fmt: skip
def test_cursor_round_trips_through_json(state):
    assert Cursor.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.mark.parametrize(
    "cursor",
    [
        {"phase": "done", "position": 0},
        {"v": 4, "mode": "done", "since": "2025-06-02T08:30:00-07:00"},
        {"v": 3, "mode": "done", "since": "2025-06-02T08:30:00"},
        {"v": 3, "mode": "cdc", "since": "2025-06-02'; DROP"},
        {"v": 3, "mode": "full", "entity": "refunds", "start": 1},
        {"v": 3, "mode": "full", "entity": "invoices", "start": 0},
        {"v": 3, "mode": "changed", "entity": "invoices", "start": 1, "since": "2025-06-02T08:30:00Z"},
        {"v": 1, "mode": "done", "since": "2025-06-02T08:30:00-07:00"},
    ],
    ids=[
        "foreign",
        "newer-version",
        "naive-time",
        "injection",
        "entity",
        "start",
        "changed-without-after",
        "before-payments",
    ],
)
def test_foreign_or_broken_cursors_are_refused(cursor):
    with pytest.raises(CursorError):
        Cursor.from_dict(cursor)


@pytest.mark.parametrize("version", [1, 2])
def test_an_earlier_releases_cursor_starts_one_full_pull(version):
    """Version 1 never pulled payments; version 2 stored a journal entry's write-off as the
    payment's money. Either starts a full pull, which rewrites what it stored, and is
    reported as an upgrade, not as a broken cursor."""
    raw = {"v": version, "mode": "done", "since": "2025-06-02T08:30:00-07:00"}
    with pytest.raises(OutdatedCursor):
        Cursor.from_dict(raw)
    reported: list[CursorError] = []
    assert start(raw, full=False, unreadable=reported.append) == Listing("full")
    assert [type(error) for error in reported] == [OutdatedCursor]
    done = {"v": VERSION, "mode": "done", "since": "2025-06-02T08:30:00-07:00"}
    assert start(done, full=False, unreadable=reported.append) == Done("2025-06-02T08:30:00-07:00", ())


def test_statements():
    assert statement(Listing("full"), 1000) == (
        "SELECT * FROM Customer WHERE Active IN (true,false) ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"
    )
    assert statement(Listing("full", "invoices", 2001), 1000) == (
        "SELECT * FROM Invoice ORDERBY Id STARTPOSITION 2001 MAXRESULTS 1000"
    )
    after = "2025-04-02T10:00:00-07:00"
    changed = Listing("changed", "invoices", 4, since="2025-04-01T00:00:00+00:00", after=after)
    assert statement(changed, 1000) == (
        "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '2025-04-02T10:00:00-07:00' "
        "ORDERBY MetaData.LastUpdatedTime, Id STARTPOSITION 4 MAXRESULTS 1000"
    )
    second = Listing("second", "customers", 1, since="2025-06-01T10:00:00-07:00")
    assert statement(second, 1000) == (
        "SELECT * FROM Customer WHERE Active IN (true,false) AND "
        "MetaData.LastUpdatedTime = '2025-06-01T10:00:00-07:00' ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"
    )


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8123/v3", "http://127.0.0.1:8123/v3"),
        ("http://localhost:8123/", "http://localhost:8123/v3"),
        ("https://sandbox-quickbooks.api.intuit.com", "https://sandbox-quickbooks.api.intuit.com/v3"),
        ("http://[::1]:9/v3/", "http://[::1]:9/v3"),
    ],
)
def test_api_base_url_is_what_the_sdk_calls_api_url_v3(url, base):
    assert api_base(url) == base


@pytest.mark.parametrize("url", ["http://quickbooks.example.com/v3", "ftp://127.0.0.1/v3", "127.0.0.1:80"])
def test_api_base_url_refuses_clear_text_off_loopback(url):
    with pytest.raises(ConnectorError, match="api_base_url"):
        api_base(url)


def test_settings_are_checked_when_the_connector_is_made():
    settings = ConnectorSettings(company_id="acme", kind="quickbooks", realm_id="1", options={"pagesize": 5})
    with pytest.raises(ConnectorError, match="unknown QuickBooks connector option"):
        create(settings, credentials=None)
    with pytest.raises(ConnectorError, match="realm_id"):
        create(ConnectorSettings(company_id="acme", kind="quickbooks"), credentials=None)
    with pytest.raises(ConnectorError, match="page_size"):
        create(ConnectorSettings(company_id="acme", kind="quickbooks", realm_id="1",
                                 options={"page_size": 5000}), credentials=None)  # fmt: skip
