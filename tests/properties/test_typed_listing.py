"""A full listing's page read through the typed structs gives the general path's records.

Pages of QuickBooks rows in the many spellings a real answer uses (amounts as numbers,
integers or strings, references with padding, optional fields missing or null, times in
any offset) are read both ways: the typed reader (`typed_fields`, what `listed` and the
page decoder use first) and the standard parser with the row-by-row normalizers. Where the
typed reader reads a page, its records are the normalizers' (and nothing is quarantined);
a page of only such rows it always reads, so the fast path cannot quietly stop being
taken. Rows from the fuzz suite's nasty values are mixed in: the typed reader may decline
those pages (the general path then reads them), never read them differently.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.quickbooks import normalize as qbo
from connectors.quickbooks.listed import listed, listed_fields
from connectors.quickbooks.typed import READERS, typed_fields
from connectors.simulators.generator import generate_company
from portal_rules.records import RECORD_TYPES, Quarantined

from .test_fast_decode import body, first_query_pages, standard
from .test_ledger_normalizers_fuzz import QBO_CREDIT, QBO_PAYMENT
from .test_normalizers_fuzz import QBO_CUSTOMER, QBO_INVOICE, anything, payloads

EXAMPLES = settings(max_examples=60, deadline=None)
MISSING = object()  # a field left out of the row

ids = st.integers(1, 10**6).map(str) | st.integers(1, 999).map(lambda n: f" {n} ")
amounts = st.one_of(
    st.decimals(min_value=-(10**9), max_value=10**9, places=2),
    st.decimals(min_value=-(10**6), max_value=10**6, places=6),
    st.integers(-(10**9), 10**9),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),  # amounts sent as JSON strings
    st.sampled_from([Decimal("-0.00"), Decimal("0"), Decimal("1E+2"), Decimal("0.00001")]),
)
balances = st.one_of(  # a Balance or a payment's or credit's amount: never below zero (EDGES has some)
    st.decimals(min_value=0, max_value=10**9, places=2),
    st.decimals(min_value=0, max_value=10**6, places=6),
    st.integers(0, 10**9),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    st.sampled_from([Decimal("-0.00"), Decimal("0"), Decimal("1E+2"), Decimal("0.00001")]),
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))])
times = st.builds(
    lambda moment, zone, spec: moment.replace(tzinfo=zone).isoformat(timespec=spec),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    offsets,
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
) | st.just("2025-06-02T08:30:00Z")
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)).map(date.isoformat)
texts = st.text(max_size=12)
refs = st.fixed_dictionaries({"value": ids}, optional={"name": texts})
skipped = st.recursive(  # any JSON the reader skips (not NaN: no JSON parser here takes it)
    st.none() | st.booleans() | st.integers() | texts | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
meta = st.one_of(
    st.none(),
    st.just({}),
    st.fixed_dictionaries({"LastUpdatedTime": times | st.none()}, optional={"CreateTime": times}),
)


def maybe(values, *, null: bool = True):
    """The field's value, or the field left out (or null, where the API may send null)."""
    return st.one_of(values, st.just(MISSING), *([st.none()] if null else []))


links = st.fixed_dictionaries(
    {"TxnType": st.sampled_from(["Invoice", "CreditMemo", "JournalEntry", "Expense", "Deposit"])},
    optional={"TxnId": ids},
).filter(lambda link: "TxnId" in link or link["TxnType"] in ("Expense", "Deposit"))
lines = st.fixed_dictionaries(
    {"Amount": amounts},
    optional={"LinkedTxn": st.lists(links, max_size=3) | st.none(), "LineEx": skipped},
)
USUAL = {
    "customers": {
        "Id": ids,
        "DisplayName": st.text(min_size=1, max_size=20).filter(str.strip),
        "Active": maybe(st.booleans(), null=False),
        "PrimaryEmailAddr": maybe(
            st.fixed_dictionaries(
                {}, optional={"Address": st.sampled_from(["a@x.example", "a@x; b@y", "", " ", None])}
            )
        ),
        "MetaData": maybe(meta),
        "status": maybe(st.just("Active")),
    },
    "invoices": {
        "Id": ids,
        "CustomerRef": refs,
        "TotalAmt": amounts,
        "Balance": balances,
        "DocNumber": maybe(texts),
        "TxnDate": maybe(days),
        "DueDate": maybe(days),
        "CurrencyRef": maybe(st.fixed_dictionaries({"value": st.sampled_from(["USD", "EUR", " ", " CAD "])})),
        "EmailStatus": maybe(st.sampled_from(["EmailSent", "NotSet", "NeedToSend"])),
        "PrintStatus": maybe(st.sampled_from(["PrintComplete", "NotSet", "NeedToPrint"])),
        "PrivateNote": maybe(st.sampled_from(["Voided", " voided by Ann", "", "note"])),
        "MetaData": maybe(meta),
        "Line": maybe(st.lists(skipped, max_size=2)),  # read by nothing: skipped, whatever it holds
    },
    "payments": {
        "Id": ids,
        "CustomerRef": refs,
        "TotalAmt": balances,
        "UnappliedAmt": maybe(balances),
        "TxnDate": maybe(days),
        "CurrencyRef": maybe(st.fixed_dictionaries({"value": st.sampled_from(["USD", "EUR"])})),
        "PrivateNote": maybe(st.sampled_from(["Voided", "", "note"])),
        "PaymentRefNum": maybe(texts),
        "MetaData": maybe(meta),
        "Line": maybe(st.lists(lines, max_size=4)),
    },
    "credits": {
        "Id": ids,
        "CustomerRef": refs,
        "TotalAmt": balances,
        "Balance": maybe(balances),
        "RemainingCredit": balances,
        "DocNumber": maybe(texts),
        "TxnDate": maybe(days),
        "PrivateNote": maybe(st.sampled_from(["Voided", "", "note"])),
        "MetaData": maybe(meta),
    },
}
NASTY = {"customers": QBO_CUSTOMER, "invoices": QBO_INVOICE, "payments": QBO_PAYMENT, "credits": QBO_CREDIT}
TABLES = qbo.TABLES


@st.composite
def usual(draw, fields: dict) -> dict:
    row = {name: draw(values) for name, values in fields.items()}
    return {name: value for name, value in row.items() if value is not MISSING}


def general(raw: bytes, entity: str) -> tuple[list, list[Quarantined], int]:
    """The page as the standard parser and the row-by-row normalizers read it."""
    rows = standard(raw)["QueryResponse"].get(TABLES[entity], [])
    records, quarantined = qbo.normalize_all(entity, rows, "USD")
    return records, quarantined, len(rows)


def page(entity: str, rows: list) -> bytes:
    return body(
        {"QueryResponse": {TABLES[entity]: rows, "startPosition": 1}, "time": "2025-06-02T08:30:00-07:00"}
    )


def entity_rows(mix):
    return st.sampled_from(list(USUAL)).flatmap(
        lambda entity: st.tuples(st.just(entity), st.lists(mix(entity), min_size=1, max_size=4))
    )


@EXAMPLES
@given(entity_rows(lambda entity: usual(USUAL[entity])))
def test_pages_of_usual_rows_are_read_typed_as_the_normalizers_read_them(drawn):
    entity, rows = drawn
    raw = page(entity, rows)
    assert typed_fields(raw, entity, "USD") is not None
    got = listed(raw, entity, "USD")
    assert got is not None and (got.records, got.quarantined, got.rows) == general(raw, entity)
    assert all(type(record) is RECORD_TYPES[entity] for record in got.records)


@EXAMPLES
@given(entity_rows(lambda entity: usual(USUAL[entity]) | payloads(NASTY[entity]) | anything))
def test_the_typed_reader_declines_what_it_would_read_differently(drawn):
    entity, rows = drawn
    assert_read_alike(entity, page(entity, rows))


def test_a_row_with_one_unusual_field_is_declined_or_read_alike(case):
    """Each field of a usual row, in turn, spelled as the general path reads specially (a
    deletion, a blank id, a non-finite amount, a date with an offset, a time without a zone
    or past the calendar in UTC, a payment line linking without an id, padding to strip)."""
    entity, row = case
    assert_read_alike(entity, page(entity, [BASE[entity], row]))


@pytest.mark.parametrize("entity", list(USUAL))
def test_the_usual_rows_the_unusual_ones_are_made_from_are_read_typed(entity):
    raw = page(entity, [BASE[entity]])
    assert typed_fields(raw, entity, "USD") is not None
    assert_read_alike(entity, raw)


def assert_read_alike(entity: str, raw: bytes) -> None:
    if typed_fields(raw, entity, "USD") is None:
        return
    records, quarantined, count = general(raw, entity)
    got = listed(raw, entity, "USD")
    assert quarantined == [] and got is not None and (got.records, got.rows) == (records, count)


BAD_AMOUNTS = ["NaN", "Infinity", "-Infinity", "sNaN", "abc", True, None, " 12.5 ", "1_000"]
NEGATIVE = [Decimal("-0.01"), -5, "-5.00", Decimal("-0.00")]  # no Balance or ledger amount is (but -0)
BAD_TIMES = ["2025-06-02T08:30:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "yesterday", 5]
EDGES = {
    "Id": [" ", "", 12, None, True],
    "DisplayName": [" ", "", 5, None],
    "Active": [None, "true", 1],
    "status": ["Deleted", "Active", None, 5],
    "PrimaryEmailAddr": ["a@x.example", 5, [], {"Address": 5}],
    "CustomerRef": [{"value": " "}, {"value": 12}, {}, None, "12", {"value": None}],
    "CurrencyRef": [
        {},
        {"value": 5},
        "USD",
        {"value": None},
        {"value": "5"},
        {"value": "US Dollar"},
        {"value": "usd"},
        {"value": {"code": "USD"}},
        {"value": " EUR "},
    ],
    "TotalAmt": BAD_AMOUNTS + NEGATIVE,
    "Balance": BAD_AMOUNTS + NEGATIVE,
    "UnappliedAmt": BAD_AMOUNTS + NEGATIVE,
    "RemainingCredit": BAD_AMOUNTS + NEGATIVE,
    "DocNumber": [12, Decimal("1.5"), True],
    "PaymentRefNum": [12, ""],
    "PrivateNote": [5, "  VOIDED "],
    "TxnDate": ["2025-06-02Z", "2025-06-02+01:00", "20250602", "2025-02-30", "2025-06-02T00:00:00", 5],
    "DueDate": ["2025-06-02-07:00", "", 5],
    "MetaData": ["x", 5, *({"LastUpdatedTime": value} for value in BAD_TIMES)],
    "Line": [
        "x",
        [5],
        [{"Amount": 5, "LinkedTxn": [{"TxnType": "Invoice", "TxnId": " "}]}],
        [{"Amount": 5, "LinkedTxn": [{"TxnType": "CreditMemo"}]}],
        [{"LinkedTxn": [{"TxnType": "Invoice", "TxnId": "3"}]}],
        [{"Amount": "NaN", "LinkedTxn": [{"TxnType": "CreditMemo", "TxnId": "3"}]}],
        [{"Amount": 5, "LinkedTxn": [{"TxnType": "Invoice", "TxnId": 3}]}],
        [{"Amount": 5, "LinkedTxn": "x"}],
        [{"Amount": 5, "LinkedTxn": [5, {"TxnType": "Invoice", "TxnId": "4"}]}],
        [
            {
                "Amount": 5,
                "LinkedTxn": [
                    {"TxnType": "Invoice", "TxnId": " 4 "},
                    {"TxnType": "CreditMemo", "TxnId": "9 "},
                ],
            }
        ],
    ],
}


TIME = {"LastUpdatedTime": "2025-06-02T08:30:00-07:00"}
REF = {"value": "7", "name": "Ann"}
LINES = [
    {
        "Amount": 30,
        "LinkedTxn": [{"TxnType": "CreditMemo", "TxnId": "5"}, {"TxnType": "Invoice", "TxnId": "4"}],
    }
]
BASE = {
    "customers": {"Id": "1", "DisplayName": "Ann", "Active": True, "MetaData": TIME,
                  "PrimaryEmailAddr": {"Address": "ann@x.example"}},
    "invoices": {"Id": "2", "CustomerRef": REF, "TotalAmt": 100, "Balance": 40, "DocNumber": "1001",
                 "TxnDate": "2025-06-01", "DueDate": "2025-07-01", "CurrencyRef": {"value": "USD"},
                 "EmailStatus": "EmailSent", "PrivateNote": "", "MetaData": TIME},
    "payments": {"Id": "3", "CustomerRef": REF, "TotalAmt": 30, "UnappliedAmt": 0, "TxnDate": "2025-06-03",
                 "PaymentRefNum": "ch-1", "Line": LINES, "MetaData": TIME},
    "credits": {"Id": "4", "CustomerRef": REF, "TotalAmt": 20, "Balance": 5, "RemainingCredit": 5,
                "TxnDate": "2025-06-02", "MetaData": TIME},
}  # fmt: skip


def edged_rows():
    for entity, base in BASE.items():
        for name in sorted(set(USUAL[entity]) & set(EDGES)):
            for n, value in enumerate(EDGES[name]):
                row = {**base, name: value}
                yield pytest.param((entity, row), id=f"{entity}-{name}-{n}")
                if entity == "credits" and name == "RemainingCredit":  # read only without a Balance
                    yield pytest.param(
                        (entity, {**row, "Balance": None}), id=f"{entity}-{name}-{n}-no-balance"
                    )


@pytest.fixture(params=list(edged_rows()))
def case(request):
    return request.param


def test_a_negative_balance_is_quarantined_whichever_path_reads_the_page():
    """The typed reader declines the page; the general path keeps the usual row and
    quarantines the invoice with the negative Balance, saying why."""
    raw = page("invoices", [BASE["invoices"], {**BASE["invoices"], "Id": "3", "Balance": -5}])
    assert typed_fields(raw, "invoices", "USD") is None
    got = listed(raw, "invoices", "USD")
    assert got is not None and [r.ref for r in got.records] == ["2"]
    assert got.quarantined == [Quarantined("invoices", "3", "negative Balance -5")]


def test_an_entity_without_a_typed_reader_is_left_to_the_general_path(monkeypatch):
    raw = page("invoices", [BASE["invoices"]])
    monkeypatch.delitem(READERS, "invoices")
    assert typed_fields(raw, "invoices", "USD") is None
    got = listed(raw, "invoices", "USD")
    assert got is not None and (got.records, got.quarantined, got.rows) == general(raw, "invoices")


def test_a_fault_or_another_shape_is_left_to_the_general_path():
    fault = b'{"Fault": {"Error": [{"Message": "boom", "code": "500"}]}, "time": "2025-06-02T08:30:00Z"}'
    both = b'{"QueryResponse": {"Invoice": []}, "Fault": {"Error": []}}'
    for raw in (fault, both, b"[]", b"not json", b'{"QueryResponse": []}'):
        assert typed_fields(raw, "invoices", "USD") is None


def test_the_page_decoders_answers_are_the_records(monkeypatch):
    """The simulator's realistic pages of every entity take the typed path; their field dicts,
    through msgpack as the page decoder sends them, are the normalizers' records."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    company = generate_company("quickbooks", seed=11, customers=60, invoices=600, today=date(2026, 6, 1))
    pages = first_query_pages(company, TABLES.values())
    bodies = {entity: pages[table] for entity, table in TABLES.items()}
    encoder = msgspec.msgpack.Encoder()
    for entity, raw in bodies.items():
        fields = listed_fields(raw, entity, "USD")
        assert fields is not None and fields.records and type(fields.records[0]) is dict, entity
        order = [field.name for field in dataclasses.fields(RECORD_TYPES[entity])]
        assert all(list(record) == order for record in fields.records), entity  # msgpack's fast order
        answer = encoder.encode((fields.records, fields.quarantined, fields.rows))
        decoder = msgspec.msgpack.Decoder(tuple[list[RECORD_TYPES[entity]], list[Quarantined], int])
        records, quarantined, count = decoder.decode(answer)
        assert (records, quarantined, count) == general(raw, entity), entity
