"""Pure parts of the Xero connector as tables: normalization of raw Xero JSON, the cursor,
the error classification and the options."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import urllib3

from connectors.base import ConnectorError, ReconnectNeeded
from connectors.errors import Action, retry_after_seconds
from connectors.xero import decode
from connectors.xero.cursor import Cursor, Marks, start
from connectors.xero.errors import classify
from connectors.xero.normalize import (
    MalformedBody,
    MalformedRecord,
    parse_answer,
    parse_datetime,
    parse_listing,
    to_customer,
    to_invoice,
)
from connectors.xero.options import XeroOptions
from connectors.xero.pull import sort_contacts, sort_invoices


def raw_invoice(**changes) -> dict:
    invoice = {
        "Type": "ACCREC",
        "InvoiceID": "inv-1",
        "InvoiceNumber": "INV-0001",
        "Contact": {"ContactID": "c-1", "Name": "Café Müller"},
        "Date": "/Date(1748736000000+0000)/",
        "DueDate": "/Date(1751328000000+0000)/",
        "Status": "AUTHORISED",
        "Total": Decimal("120.10"),
        "AmountDue": Decimal("20.10"),
        "CurrencyCode": "EUR",
        "SentToContact": True,
        "UpdatedDateUTC": "/Date(1748771234567+0000)/",
    }
    invoice.update(changes)
    return {key: value for key, value in invoice.items() if value is not ...}


BODY = b"""{"Id": "d1", "Status": "OK", "DateTimeUTC": "/Date(1748772000000)/",
 "pagination": {"page": 2, "pageSize": 1000, "pageCount": 3, "itemCount": 2100},
 "Invoices": [{"Type": "ACCREC", "InvoiceID": "inv-1", "InvoiceNumber": "INV-0001",
   "Contact": {"ContactID": "c-1", "Name": "Caf\\u00e9 M\\u00fcller"},
   "Date": "/Date(1748736000000+0000)/", "DueDate": "/Date(1751328000000+0000)/",
   "Status": "AUTHORISED", "Total": 120.10, "AmountDue": 20.1, "AmountPaid": 100.00,
   "CurrencyCode": "EUR", "SentToContact": true, "UpdatedDateUTC": "/Date(1748771234567+0000)/"}]}"""


def test_an_invoice_as_xero_sends_it():
    (raw,), paging = parse_listing(BODY, "invoices")
    assert parse_answer(BODY, "invoices").served == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    record = to_invoice(raw)
    assert paging == (3, 2100)  # pageCount, itemCount
    assert (record.ref, record.customer_ref, record.doc_number) == ("inv-1", "c-1", "INV-0001")
    assert (record.issue_date, record.due_date) == (date(2025, 6, 1), date(2025, 7, 1))
    assert (record.total, record.balance, record.currency) == (Decimal("120.10"), Decimal("20.1"), "EUR")
    assert isinstance(record.balance, Decimal) and str(record.total) == "120.10"  # never a float
    assert record.source_sent and not (record.voided or record.deleted or record.draft)
    assert record.updated_at == datetime(2025, 6, 1, 9, 47, 14, 567000, tzinfo=UTC)


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
def test_invoice_status_flags(status, flags):
    record = to_invoice(raw_invoice(Status=status))
    assert (record.voided, record.deleted, record.draft) == flags


def test_an_invoice_without_a_status_is_a_draft():
    """Kept as it was (documented in `signals.xero_flags`): never shown, never reminded."""
    assert to_invoice(raw_invoice(Status=...)).draft


def test_an_unknown_status_is_quarantined_with_its_id_not_hidden_as_a_draft():
    invoices, quarantined = sort_invoices([raw_invoice(), raw_invoice(InvoiceID="inv-2", Status="PENDING")])
    assert [i.ref for i in invoices] == ["inv-1"]
    assert [(q.entity, q.ref, q.reason) for q in quarantined] == [
        ("invoices", "inv-2", "unknown invoice Status 'PENDING'")
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"SentToContact": ...}, False),
        ({"SentToContact": False}, False),
        ({"SentToContact": True}, True),
    ],
    ids=["omitted", "false", "true"],
)
def test_sent_to_contact(changes, expected):
    assert to_invoice(raw_invoice(**changes)).source_sent is expected


def test_bills_are_not_invoices():
    assert to_invoice(raw_invoice(Type="ACCPAY")) is None
    assert to_invoice(raw_invoice(Type="accpay")) is None


def test_the_type_is_read_in_any_case_as_the_status_is():
    assert to_invoice(raw_invoice(Type="accrec")) == to_invoice(raw_invoice(Type="ACCREC")) is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (raw_invoice(Total="abc"), "Total is not a number: 'abc'"),
        (raw_invoice(AmountDue=None), "AmountDue is not a number: None"),
        (raw_invoice(AmountDue=True), "AmountDue is not a number: True"),
        (raw_invoice(Total="NaN"), "Total is not a number: 'NaN'"),
        (raw_invoice(AmountDue=Decimal("-0.01")), "AmountDue is negative: -0.01"),
        (raw_invoice(AmountDue=-20), "AmountDue is negative: -20"),
        (raw_invoice(Total=Decimal("-120.10")), "Total is negative: -120.10"),
        (raw_invoice(DueDate="/Date(soon)/"), "DueDate is not a Xero date: '/Date(soon)/'"),
        (raw_invoice(Contact=None), "Contact is not a JSON object"),
        (raw_invoice(Contact={"Name": "x"}), "missing Contact.ContactID"),
        (raw_invoice(InvoiceID=""), "missing InvoiceID"),
        (raw_invoice(CurrencyCode=...), "missing CurrencyCode"),
        (raw_invoice(CurrencyCode="Euro"), "CurrencyCode is not a currency code: 'Euro'"),
        (raw_invoice(Status=7), "Status is not text: 7"),
        (raw_invoice(Status="PENDING"), "unknown invoice Status 'PENDING'"),
        (raw_invoice(Status=""), "unknown invoice Status ''"),
        (raw_invoice(Type=...), "missing Type"),
        (raw_invoice(Type="ACCRECCREDIT"), "Type is neither ACCREC nor ACCPAY: 'ACCRECCREDIT'"),
        ("not an object", "Invoice is not a JSON object"),
    ],
    ids=[
        "text-total",
        "null-amount-due",
        "bool-amount-due",
        "nan",
        "negative-amount-due",
        "negative-integer-amount-due",
        "negative-total",
        "bad-date",
        "no-contact",
        "contact-without-id",
        "no-id",
        "no-currency",
        "currency-name",
        "numeric-status",
        "unknown-status",
        "empty-status",
        "no-type",
        "unknown-type",
        "string",
    ],
)
def test_malformed_invoices_say_why(raw, reason):
    with pytest.raises(MalformedRecord) as raised:
        to_invoice(raw)
    assert str(raised.value) == reason


def test_a_zero_amount_due_spelled_negative_is_zero():
    record = to_invoice(raw_invoice(AmountDue=Decimal("-0.00"), Total=Decimal("0")))
    assert (record.balance, record.total) == (0, 0)


def test_a_negative_amount_due_is_quarantined_not_subtracted_from_the_balance():
    """Xero keeps money owed back in credit notes and overpayments, never in AmountDue."""
    invoices, quarantined = sort_invoices([raw_invoice(), raw_invoice(InvoiceID="inv-2", AmountDue=-5)])
    assert [i.ref for i in invoices] == ["inv-1"]
    assert [(q.ref, q.reason) for q in quarantined] == [("inv-2", "AmountDue is negative: -5")]


def test_a_page_quarantines_bad_records_and_keeps_the_rest():
    good, bad = raw_invoice(), raw_invoice(InvoiceID="inv-2", Total="abc")
    invoices, quarantined = sort_invoices([good, bad, raw_invoice(Type="ACCPAY", InvoiceID="b")])
    assert [i.ref for i in invoices] == ["inv-1"]
    assert [(q.entity, q.ref, q.reason) for q in quarantined] == [
        ("invoices", "inv-2", "Total is not a number: 'abc'")
    ]


def raw_contact(**changes) -> dict:
    contact = {
        "ContactID": "c-1",
        "ContactStatus": "ACTIVE",
        "Name": "Łódź Sp. z o.o.",
        "EmailAddress": "faktury@lodz.example.pl",
        "ContactPersons": [
            {"EmailAddress": "anna@lodz.example.pl", "IncludeInEmails": True},
            {"EmailAddress": "piotr@lodz.example.pl", "IncludeInEmails": False},
            {"EmailAddress": "FAKTURY@lodz.example.pl", "IncludeInEmails": True},
            {"FirstName": "No", "LastName": "Email", "IncludeInEmails": True},
        ],
        "IsCustomer": True,
        "UpdatedDateUTC": "/Date(1748771234000+0000)/",
    }
    contact.update(changes)
    return contact


def test_a_contact_as_xero_sends_it():
    record = to_customer(raw_contact())
    assert (record.ref, record.display_name, record.active) == ("c-1", "Łódź Sp. z o.o.", True)
    assert record.emails == ("faktury@lodz.example.pl", "anna@lodz.example.pl")
    assert record.updated_at == datetime(2025, 6, 1, 9, 47, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "active"),
    [("ACTIVE", True), ("ARCHIVED", False), ("GDPRREQUEST", False), (None, True)],
    ids=["active", "archived", "gdpr", "missing"],
)
def test_contact_status(status, active):
    assert to_customer(raw_contact(ContactStatus=status)).active is active


@pytest.mark.parametrize("status", ["GDPRREQUEST", "gdprrequest"])
def test_a_contact_that_asked_for_erasure_has_no_email_address(status):
    """Nothing downstream can invite or remind it, whatever `import_inactive_customers` says."""
    record = to_customer(raw_contact(ContactStatus=status))
    assert (record.ref, record.display_name, record.active, record.emails) == (
        "c-1",
        "Łódź Sp. z o.o.",
        False,
        (),
    )
    assert to_customer(raw_contact(ContactStatus="ARCHIVED")).emails  # archived ones keep theirs


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Name": ""}, "missing Name"),
        ({"ContactID": None}, "missing ContactID"),
        ({"ContactPersons": "anna"}, "ContactPersons is not a list of objects"),
        ({"UpdatedDateUTC": "yesterday"}, "UpdatedDateUTC is not a Xero date: 'yesterday'"),
    ],
    ids=["no-name", "no-id", "persons-not-a-list", "bad-updated"],
)
def test_malformed_contacts_say_why(changes, reason):
    with pytest.raises(MalformedRecord, match=reason):
        to_customer(raw_contact(**changes))


def test_contacts_split_into_customers_and_held_suppliers():
    supplier = raw_contact(ContactID="s-1", IsCustomer=False)
    promoted = raw_contact(ContactID="p-1", IsCustomer=False)
    batch = sort_contacts(
        [raw_contact(), supplier, promoted, raw_contact(ContactID="")],
        held=frozenset({"c-1", "old"}),
        promoted=frozenset({"p-1"}),
    )
    assert [c.ref for c in batch.customers] == ["c-1", "p-1"]
    assert batch.held == {"s-1", "old"}
    assert [(q.ref, q.reason) for q in batch.quarantined] == [(None, "missing ContactID")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Date(0+0000)/", datetime(1970, 1, 1, tzinfo=UTC)),
        ("/Date(1748771234567+1300)/", datetime(2025, 6, 1, 9, 47, 14, 567000, tzinfo=UTC)),
        ("/Date(1748771234567)/", datetime(2025, 6, 1, 9, 47, 14, 567000, tzinfo=UTC)),
        ("2025-06-01T09:47:14", datetime(2025, 6, 1, 9, 47, 14, tzinfo=UTC)),
        ("2025-06-01T11:47:14+02:00", datetime(2025, 6, 1, 9, 47, 14, tzinfo=UTC)),
    ],
    ids=["epoch", "offset-is-informational", "no-offset", "iso-naive", "iso-offset"],
)
def test_xero_dates(text, expected):
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    ("stamp", "served"),
    [
        ('"/Date(1748772000000)/"', datetime(2025, 6, 1, 10, 0, tzinfo=UTC)),
        ('"/Date(1748772000000+0000)/"', datetime(2025, 6, 1, 10, 0, tzinfo=UTC)),
        (None, None),
        ('"yesterday"', None),
        ("1748772000000", None),
        ("null", None),
    ],
    ids=["xero", "with-offset", "absent", "not-a-date", "a-number", "null"],
)
def test_the_answers_datetimeutc_is_read_by_both_decoders(stamp, served):
    head = b"{" if stamp is None else b'{"DateTimeUTC": ' + stamp.encode() + b", "
    body = head + b'"Contacts": [], "pagination": {"pageCount": 0, "itemCount": 0}}'
    assert decode.listing(body, "customers").served == served
    assert parse_answer(body, "customers").served == served
    broken = head + b'"Contacts": [1]}'  # not what the fast decoder describes: the standard parser's
    assert decode.listing(broken, "customers") is None and parse_answer(broken, "customers").served == served


@pytest.mark.parametrize(
    "body",
    [b'{"Invoices": [', b"[]", b'{"Contacts": []}', b'{"Invoices": {}}'],
    ids=["truncated", "list", "other-collection", "not-a-list"],
)
def test_malformed_bodies_are_errors_worth_a_retry(body):
    with pytest.raises(ValueError) as raised:
        parse_listing(body, "invoices")
    assert classify(raised.value, company="acme").action is Action.RETRY
    assert isinstance(raised.value, (MalformedBody, json.JSONDecodeError))


# -- cursor ---------------------------------------------------------------------------------

T1 = datetime(2025, 6, 1, 9, 0, 0, 250000, tzinfo=UTC)


def test_a_finished_pass_starts_an_incremental_one_from_what_it_saw():
    done = Cursor(full=True, phase="done", seen=Marks(T1, T1 + timedelta(hours=1)), held=frozenset({"s"}))
    following = start(done.to_dict(), full=False)
    assert (following.full, following.phase, following.page) == (False, "customers", 1)
    assert following.since == done.seen and following.held == {"s"}
    assert following.seen == Marks()  # this pass's own answers set its watermark
    # naive UTC, a minute before: Xero stamps an answer when it sends it, not when it read the page
    assert following.if_modified_since("customers") == datetime(2025, 6, 1, 8, 59, 0)
    assert start(done.to_dict(), full=True) == Cursor(full=True)


@pytest.mark.parametrize(
    "raw",
    [None, {}, {"v": 99, "phase": "done"}, {"v": 1, "phase": "nowhere"}, {"v": 1, "phase": "done"}],
    ids=["none", "empty", "future-version", "bad-phase", "incomplete"],
)
def test_unreadable_cursors_start_a_full_pull(raw):
    assert start(raw, full=False) == Cursor(full=True)


def v2(**changes) -> dict:
    """A cursor as version 2 stored it (pages counted in UpdatedDateUTC order)."""
    marks = {"customers": T1.isoformat(), "invoices": T1.isoformat(), "payments": None, "credits": None}
    return {"v": 2, "full": False, "phase": "invoices", "page": 4, "since": marks, "seen": marks,
            "held": ["s"], "promoted": ["p"], **changes}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "full"),
    [(v2(), False), (v2(full=True, since={}), True), (v2(phase="credits", page=1), False)],
    ids=["incremental", "full", "last-listing"],
)
def test_an_unfinished_v2_pass_starts_over_with_its_marks(raw, full):
    cursor = start(raw, full=False)
    assert (cursor.full, cursor.phase, cursor.page, cursor.seen) == (full, "customers", 1, Marks())
    assert cursor.since == (Marks() if full else Marks(T1, T1))
    assert (cursor.held, cursor.promoted) == ({"s"}, {"p"})
    assert cursor.to_dict()["v"] == 3


def test_a_finished_v2_pass_leads_to_an_incremental_one_from_its_marks():
    cursor = start(v2(phase="done", page=1, full=True), full=False)
    assert (cursor.full, cursor.phase, cursor.page) == (False, "customers", 1)
    assert (cursor.since, cursor.seen, cursor.held) == (Marks(T1, T1), Marks(), {"s"})


def test_a_cursor_round_trips_through_json():
    cursor = Cursor(
        full=True,
        phase="invoices",
        page=3,
        since=Marks(None, T1),
        seen=Marks(T1, T1),
        held=frozenset({"b", "a"}),
        promoted=frozenset({"p"}),
    )
    raw = json.loads(json.dumps(cursor.to_dict()))
    assert Cursor.from_dict(raw) == cursor and raw["held"] == ["a", "b"]
    assert start(raw, full=False) == cursor  # mid-pass: continue it


def test_a_watermark_keeps_the_earliest_answer():
    """Pages fetched ahead are answered in any order: the mark is the earliest DateTimeUTC."""
    marks = Marks(T1, None)
    assert marks.earliest("customers", T1 + timedelta(seconds=5)) is marks
    assert marks.earliest("customers", T1 - timedelta(seconds=5)).customers == T1 - timedelta(seconds=5)
    assert marks.earliest("invoices", T1).invoices == T1


# -- errors and options -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (ReconnectNeeded("refused"), Action.FAIL),
        (urllib3.exceptions.ProtocolError("Connection aborted."), Action.RETRY),
        (ConnectionResetError(), Action.RETRY),
        (MalformedBody("response has no Invoices list"), Action.RETRY),
        (KeyError("surprise"), Action.FAIL),
    ],
    ids=["reconnect", "protocol", "reset", "malformed", "bug"],
)
def test_exception_table(error, action):
    assert classify(error, company="acme").action is action


@pytest.mark.parametrize(
    ("value", "seconds"), [("1", 1.0), ("86400", 86400.0), (None, None), ("soon", None), ("-3", 0.0)]
)
def test_retry_after(value, seconds):
    assert retry_after_seconds(value) == seconds


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pagesize": 10}, "unknown Xero connector option"),
        ({"page_size": 5000}, "page_size must be between 1 and 1000"),
        ({"per_minute": 0}, "must be >= 1"),
    ],
    ids=["typo", "page-too-big", "zero-limit"],
)
def test_options_are_validated(options, message):
    with pytest.raises(ConnectorError, match=message):
        XeroOptions.parse(options)
