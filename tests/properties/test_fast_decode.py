"""The msgspec decoders give what the standard parser gives: same records, same quarantine.

Random payloads (the fuzz suite's strategies) are written as JSON bodies and read both ways:
the fast decoder either declines (None: the caller then parses the standard way) or yields
rows that normalize, page and quarantine exactly as `json.loads(..., parse_float=Decimal)`
rows do. A recording dict shows the normalizers read no field the decoders skip, so adding
a field to a normalizer without adding it to its decoder fails here, not in production.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.quickbooks import decode as qbo_decode
from connectors.quickbooks import normalize as qbo
from connectors.quickbooks.pull import _row_time
from connectors.simulators import quickbooks_render as qbo_render
from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero_ledger import render_credit_note, render_payment
from connectors.simulators.xero_render import envelope, render_contact, render_invoice
from connectors.xero import decode as xero_decode
from connectors.xero import normalize as xero
from connectors.xero.normalize_ledger import to_credit, to_payment
from connectors.xero.pull import sort_contacts, sort_invoices
from tests.properties.test_normalizers_fuzz import (
    QBO_CUSTOMER,
    QBO_CUSTOMER_VALID,
    QBO_INVOICE,
    QBO_VALID,
    XERO_CONTACT,
    XERO_CONTACT_VALID,
    XERO_INVOICE,
    XERO_VALID,
    anything,
    payloads,
)

EXAMPLES = settings(max_examples=40, deadline=None)


def literal(value):
    """Numbers as the JSON literals a vendor would write; NaN and Infinity as Python's json writes
    them (the standard parser reads those, msgspec declines: the fallback is exercised too)."""
    if isinstance(value, dict):
        return {key: literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [literal(item) for item in value]
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        if value.is_nan() if isinstance(value, Decimal) else math.isnan(value):
            return msgspec.Raw(b"NaN")
        if value in (Decimal("Infinity"), float("inf")):
            return msgspec.Raw(b"Infinity")
        if value in (Decimal("-Infinity"), float("-inf")):
            return msgspec.Raw(b"-Infinity")
        return msgspec.Raw(str(value).encode() if isinstance(value, Decimal) else repr(value).encode())
    return value


def body(data) -> bytes:
    return msgspec.json.encode(literal(data))


def standard(raw: bytes):
    return json.loads(raw, parse_float=Decimal)


def qbo_outcome(rows: list, entity: str):
    records, quarantined = qbo.normalize_all(entity, rows, "USD")
    return records, quarantined, [_row_time(row) for row in rows]


@EXAMPLES
@given(
    customers=st.lists(payloads(QBO_CUSTOMER) | anything, max_size=4),
    invoices=st.lists(payloads(QBO_INVOICE) | anything, max_size=4),
)
def test_quickbooks_query_and_cdc_answers(customers, invoices):
    for envelope_ in (
        {"QueryResponse": {"Customer": customers, "Invoice": invoices}, "time": "2025-05-02T10:11:12-07:00"},
        {"CDCResponse": [{"QueryResponse": [{"Customer": customers}, {"Invoice": invoices}]}], "time": 1},
    ):
        raw = body(envelope_)
        fast, slow = qbo_decode.decode(raw), standard(raw)
        if fast is None:
            continue
        assert fast.get("time") == slow.get("time")
        if "QueryResponse" in slow:
            fast_rows, slow_rows = fast["QueryResponse"], slow["QueryResponse"]
        else:
            fast_rows = {k: v for part in fast["CDCResponse"][0]["QueryResponse"] for k, v in part.items()}
            slow_rows = {k: v for part in slow["CDCResponse"][0]["QueryResponse"] for k, v in part.items()}
        for table, entity in (("Customer", "customers"), ("Invoice", "invoices")):
            assert qbo_outcome(fast_rows[table], entity) == qbo_outcome(slow_rows[table], entity)


@EXAMPLES
@given(
    contacts=st.lists(payloads(XERO_CONTACT) | anything, max_size=4),
    invoices=st.lists(payloads(XERO_INVOICE) | anything, max_size=4),
    pagination=anything,
)
def test_xero_listings(contacts, invoices, pagination):
    raw = body({"Contacts": contacts, "Invoices": invoices, "pagination": pagination})
    for entity, sort in (("customers", sort_contacts), ("invoices", sort_invoices)):
        fast = xero_decode.listing(raw, entity)
        if fast is None:
            continue
        items, count = xero.parse_listing(raw, entity)
        assert fast[1] == count
        assert sort(fast[0]) == sort(items)


class Recording(dict):
    """A record that notes every field a normalizer asks for."""

    def __init__(self, data: dict, seen: set[str]) -> None:
        super().__init__(data)
        self.seen = seen

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)


def fields_read(normalize, valid: dict, variants: list[dict]) -> set[str]:
    seen: set[str] = set()
    for extra in [{}, *variants]:
        with contextlib.suppress(qbo.Malformed, xero.MalformedRecord):
            normalize(Recording({**valid, **extra}, seen))
    return seen


def test_the_normalizers_read_no_field_the_decoders_skip():
    deleted = [{"status": "Deleted"}]
    assert fields_read(qbo.to_customer, QBO_CUSTOMER_VALID, deleted) <= set(qbo_decode._CUSTOMER_FIELDS)
    assert fields_read(qbo.to_invoice, QBO_VALID, deleted) <= set(qbo_decode._INVOICE_FIELDS)
    assert fields_read(xero.to_customer, XERO_CONTACT_VALID, []) | {"IsCustomer"} <= set(
        xero_decode._CONTACT_FIELDS
    )
    assert fields_read(xero.to_invoice, XERO_VALID, [{"SentToContact": True}]) <= set(
        xero_decode._INVOICE_FIELDS
    )


def test_rich_simulator_pages_decode_fast_and_the_same():
    """The realistic payloads (lines, tax, addresses, payments) take the fast path."""
    company = generate_company("xero", seed=3, customers=30, invoices=200, today=date(2026, 6, 1))
    names = {c.id: c.name for c in company.customers.values()}
    rendered = [render_invoice(i, names[i.customer_id]) for i in company.invoices.values()]
    invoices = envelope(
        "Invoices", rendered, 0, {"page": 1, "pageSize": 1000, "pageCount": 1, "itemCount": 200}
    )
    contacts = envelope("Contacts", [render_contact(c) for c in company.customers.values()], 0, None)
    for raw, entity, sort, count in (
        (invoices, "invoices", sort_invoices, 200),
        (contacts, "customers", sort_contacts, 30),
    ):
        fast = xero_decode.listing(raw, entity)
        assert fast is not None and len(fast[0]) == count
        assert sort(fast[0]) == sort(xero.parse_listing(raw, entity)[0])


def test_rich_xero_payments_and_credit_notes_decode_fast_and_the_same():
    """Payments and credit notes take the fast path too, with the same records and the
    normalizers reading no top-level field the slim structs skip."""
    company = generate_company("xero", seed=5, customers=30, invoices=300, today=date(2026, 6, 1))
    names = {c.id: c.name for c in company.customers.values()}
    payments = [
        render_payment(p, company.invoices.get(p.allocations[0].invoice_id) if p.allocations else None,
                       names.get(p.customer_id, ""))
        for p in company.payments.values()
    ]  # fmt: skip
    credits = [
        render_credit_note(c, company.invoices, names.get(c.customer_id, ""))
        for c in company.credits.values()
    ]
    assert payments and credits
    for rendered, collection, entity, normalize, struct in (
        (payments, "Payments", "payments", to_payment, xero_decode._Payment),
        (credits, "CreditNotes", "credits", to_credit, xero_decode._Credit),
    ):
        raw = envelope(collection, rendered, 0, {"page": 1, "pageSize": 1000, "pageCount": 1, "itemCount": 9})
        fast = xero_decode.listing(raw, entity)
        items, paging = xero.parse_listing(raw, entity)
        assert fast is not None and fast[1] == paging == (1, 9)
        assert [normalize(row) for row in fast[0]] == [normalize(row) for row in items]
        seen: set[str] = set()
        for row in items:
            normalize(Recording(row, seen))
        assert seen <= set(struct.__struct_fields__)


def test_rich_quickbooks_pages_decode_fast_and_the_same():
    company = generate_company("quickbooks", seed=3, customers=30, invoices=200, today=date(2026, 6, 1))
    at = datetime(2026, 6, 1, tzinfo=UTC)
    tz = ZoneInfo("America/Los_Angeles")
    rows = [
        qbo_render.invoice_dict(i, company.customers[i.customer_id], at, 0, tz, "USD")
        for i in company.invoices.values()
    ]
    customers = [qbo_render.customer_dict(c, Decimal("12.50"), at, 1, tz) for c in company.customers.values()]
    raw = qbo_render.encode(
        {"QueryResponse": {"Invoice": rows, "Customer": customers}, "time": "2026-06-01T00:00:00-07:00"}
    )
    fast, slow = qbo_decode.decode(raw), standard(raw)
    assert fast is not None and len(fast["QueryResponse"]["Invoice"]) == 200
    for table, entity in (("Customer", "customers"), ("Invoice", "invoices")):
        assert qbo_outcome(fast["QueryResponse"][table], entity) == qbo_outcome(
            slow["QueryResponse"][table], entity
        )


def test_rich_quickbooks_payments_and_credit_memos_decode_fast_and_the_same(monkeypatch):
    """Payments (lines with LineEx and linked transactions) and credit memos as the simulator
    serves them: the slim structs give the records the standard parser gives, and the
    normalizers read no field (of a record, or of a payment's line) the structs skip."""
    from connectors.quickbooks.normalize_ledger import to_credit, to_payment

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    company = generate_company("quickbooks", seed=5, customers=40, invoices=400, today=date(2026, 6, 1))
    bodies = first_query_pages(company, ("Payment", "CreditMemo"))
    for table, entity, normalize in (
        ("Payment", "payments", to_payment),
        ("CreditMemo", "credits", to_credit),
    ):
        fast, slow = qbo_decode.decode(bodies[table]), standard(bodies[table])
        assert fast is not None and len(fast["QueryResponse"][table]) > 20
        assert qbo_outcome(fast["QueryResponse"][table], entity) == qbo_outcome(
            slow["QueryResponse"][table], entity
        )
        seen: set[str] = set()
        lines: set[str] = set()
        for row in slow["QueryResponse"][table]:
            recorded = Recording(row, seen)
            if isinstance(row.get("Line"), list):
                recorded["Line"] = [Recording(line, lines) for line in row["Line"]]
            normalize(recorded)
        struct = qbo_decode._Payment if entity == "payments" else qbo_decode._CreditMemo
        assert seen - {"Line"} <= set(struct.__struct_fields__)
        assert lines <= set(qbo_decode._Line.__struct_fields__) and (
            entity == "credits" or "LinkedTxn" in lines
        )


def first_query_pages(company, tables) -> dict[str, bytes]:
    """Each table's first query page (up to 1000 rows) as the QuickBooks simulator serves it
    (the caller allows OAuth over plain HTTP, as the simulator speaks it)."""
    with QuickBooksSimulator(company) as sim:
        access, _ = sim.tokens.issue()
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {access}", "Accept": "application/json"})
        return {
            table: session.post(
                f"{sim.api_url}/company/{company.id}/query",
                data=f"SELECT * FROM {table} ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000",
                headers={"Content-Type": "application/text"},
                timeout=30,
            ).content
            for table in tables
        }
