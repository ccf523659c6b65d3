"""The Xero connector through the real xero-python SDK against the simulator: paging, the
normalized records, suppliers, incremental pulls and resuming."""

from __future__ import annotations

import math
import re
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from xero_python.api_client import Configuration
from xero_python.api_client.oauth2 import OAuth2Token

from connectors.base import ConnectorError
from connectors.simulators import mutations
from connectors.simulators.generator import generate_company
from connectors.simulators.xero import XeroSimulator
from connectors.xero.ahead import PAGES_HELD
from connectors.xero.cursor import Cursor
from tests.connectors.xero_fixtures import (  # noqa: F401 - fixtures
    ROOMY,
    START,
    TODAY,
    XeroWorld,
    clock_fixture,
    ledger_requests,
    pull,
    sample_fixture,
    store_fixture,
    volume_fixture,
    world_fixture,
)


def sales(company) -> dict:
    return {i.id: i for i in company.invoices.values() if i.type == "ACCREC"}


def test_full_pull_reads_pages_of_1000(world, volume):
    result = pull(world.connector(volume.id))
    expected = sales(volume)
    assert len(expected) > 2000
    assert set(result.invoices) == set(expected)
    ledger = ledger_requests(volume)
    assert world.sim.counters.requests == {
        "contacts": 1,
        "invoices": math.ceil(len(expected) / 1000),
        **ledger,
    }
    assert [p.entity for p in result.pages] == ["customers", *["invoices"] * 3, *["payments"] * ledger[
        "payments"
    ], *["credits"] * ledger["creditnotes"]]  # fmt: skip
    assert [p.full_sync_complete for p in result.pages] == [False] * (len(result.pages) - 1) + [True]
    assert result.api_calls == world.sim.counters.total()
    # Xero's itemCount, for free: the whole listing's size on every page (contacts: suppliers too, none)
    totals = {(p.entity, p.total) for p in result.pages}
    assert totals == {("customers", None), ("invoices", len(expected)),
                      ("payments", len(result.payments)), ("credits", len(result.credits))}  # fmt: skip
    for ref, record in result.invoices.items():
        source = expected[ref]
        assert (record.total, record.balance) == (source.total, source.balance)
        assert isinstance(record.balance, Decimal) and record.updated_at == source.updated_at


STATUS_FLAGS = {
    "open": (False, False, False),
    "draft": (False, False, True),
    "submitted": (False, False, True),
    "voided": (True, False, False),
    "deleted": (False, True, False),
}


def test_invoices_are_normalized(world, sample):
    result = pull(world.connector(sample.id))
    assert set(result.invoices) == set(sales(sample))  # the bill (ACCPAY) never arrives
    assert {i.status for i in sales(sample).values()} == set(STATUS_FLAGS)
    for ref, record in result.invoices.items():
        source = sample.invoices[ref]
        assert (record.voided, record.deleted, record.draft) == STATUS_FLAGS[source.status], source.status
        assert record.source_sent is source.email_sent  # SentToContact, omitted when false
        assert (record.customer_ref, record.doc_number, record.currency) == (
            source.customer_id,
            source.doc_number,
            source.currency,
        )
        assert (record.issue_date, record.due_date) == (source.issue_date, source.due_date)
        expected_balance = Decimal(0) if source.status == "voided" else source.balance
        assert (record.total, record.balance) == (source.total, expected_balance)
        assert record.updated_at == source.updated_at and record.updated_at.tzinfo is not None


def test_contacts_are_normalized(world, sample):
    by_name = {c.display_name: c for c in pull(world.connector(sample.id)).customers.values()}
    assert len(by_name) == len(sample.customers)
    inactive = {name for name, c in by_name.items() if not c.active}
    assert inactive == {"Dormant Traders Inc.", "Erased Person"}  # ARCHIVED and GDPRREQUEST
    assert by_name["Dormant Traders Inc."].emails == ("old@dormant.example.com",)
    assert by_name["Erased Person"].emails == ()  # erasure requested: never mailed, not stored
    assert by_name["Łódź Sp. z o.o."].emails == ("faktury@lodz.example.pl", "anna.nowak@lodz.example.pl")
    assert by_name["No Email Bakery"].emails == ("owner@noemail-bakery.example.com",)
    assert by_name["Café Müller GmbH"].emails == ("buchhaltung@cafe-mueller.example.de",)
    source = next(c for c in sample.customers.values() if c.name == "Typo Tiles LLC")
    assert by_name["Typo Tiles LLC"].updated_at == source.updated_at


def suppliers_only(company) -> set[str]:
    return {c.id for c in company.customers.values() if not c.is_customer}


def test_suppliers_are_not_customers(world, volume):
    suppliers = suppliers_only(volume)
    assert suppliers and not {i.customer_id for i in sales(volume).values()} & suppliers
    result = pull(world.connector(volume.id))
    assert not suppliers & set(result.customers)
    assert set(result.customers) == {c.id for c in volume.customers.values()} - suppliers
    assert Cursor.from_dict(result.cursor).held == suppliers


def test_an_unreadable_suppliers_contact_is_held_not_quarantined(world, volume):
    """A supplier is no customer. Its contact, unreadable, was quarantined as a customer's,
    and stayed outstanding in `status` and /metrics once fixed in Xero: a supplier's contact
    is never stored, so no sync resolved it. It is held as any supplier's; a sales invoice
    naming it brings it in, and then, still unreadable, it is quarantined."""
    supplier = min(suppliers_only(volume))
    with world.sim.mutate(volume.id) as books:
        books.customers[supplier].name = ""
        books.revision += 1
    result = pull(world.connector(volume.id))
    assert not result.quarantined and supplier not in result.customers
    assert supplier in Cursor.from_dict(result.cursor).held
    with world.sim.mutate(volume.id) as books:
        invoice = next(i for i in sales(books).values() if i.status == "open")
        invoice.customer_id = supplier
        mutations._touch(books, invoice, world.now())
    result = pull(world.connector(volume.id), result.cursor)
    assert [(q.entity, q.ref, q.reason) for q in result.quarantined] == [
        ("customers", supplier, "missing Name")
    ]


def test_a_full_pull_promotes_in_the_same_pass(world, sample):
    """Northwind is not IsCustomer, but one sales invoice names it: it is a customer."""
    supplier = next(c for c in sample.customers.values() if c.name == "Northwind Supplies")
    assert not supplier.is_customer
    result = pull(world.connector(sample.id))
    assert [p.entity for p in result.pages] == ["customers", "customers", "invoices", "payments", "credits"]
    assert supplier.id not in {c.ref for c in result.pages[0].of("customers")}
    assert [c.ref for c in result.pages[1].of("customers")] == [supplier.id]
    assert result.pages[1].api_calls == 1 and result.pages[-1].full_sync_complete
    assert world.sim.counters.requests == {"contacts": 2, "invoices": 1, "payments": 1, "creditnotes": 1}


def test_a_cursor_stored_in_todays_format_still_resumes(world, sample):
    """A cursor committed by an earlier run (this literal format) resumes mid-pass, and keeps
    the DateTimeUTC of the answers read before it as the watermark."""
    contacts_seen = "2025-05-30T10:00:00+00:00"
    stored = {
        "v": 3,
        "full": True,
        "phase": "invoices",
        "page": 1,
        "since": {"customers": None, "invoices": None, "payments": None, "credits": None},
        "seen": {"customers": contacts_seen, "invoices": None, "payments": None, "credits": None},
        "held": [],
        "promoted": [],
    }
    resumed = pull(world.connector(sample.id), stored)
    assert not resumed.customers and set(resumed.invoices) == set(sales(sample))
    assert resumed.pages[-1].full_sync_complete
    assert world.sim.counters.requests == {"invoices": 1, "payments": 1, "creditnotes": 1}
    done = Cursor.from_dict(resumed.cursor)
    assert done.done and done.seen.customers.isoformat() == contacts_seen
    assert done.seen.invoices == done.seen.payments == done.seen.credits == START  # Xero's clock


def test_incremental_returns_only_changes(world, volume):
    first = pull(world.connector(volume.id))
    seen = Cursor.from_dict(first.cursor).seen
    at = START + timedelta(minutes=10)
    live = [i for i in sales(volume).values() if i.status == "open" and i.balance > 0 and not i.email_sent]
    paid, reopened, voided, deleted, sent = live[:5]
    customer = next(c for c in volume.customers.values() if c.active and c.is_customer)
    with world.sim.mutate(volume.id) as books:
        mutations.pay(books, paid.id, paid.balance, at)
        mutations.pay(books, reopened.id, reopened.balance, at - timedelta(minutes=5))
        mutations.refund(books, reopened.id, Decimal("10.00"), at)
        mutations.void(books, voided.id, at)
        mutations.delete(books, deleted.id, at)
        mutations.mark_sent(books, sent.id, at)
        mutations.deactivate_customer(books, customer.id, at)
    world.clock.advance(20 * 60)  # the changes are in the past of Xero's clock
    world.sim.counters.reset()

    again = pull(world.connector(volume.id), first.cursor)
    # If-Modified-Since overlaps the previous watermark by a second: upserts are idempotent.
    cutoff = (seen.invoices - timedelta(seconds=1)).replace(microsecond=0)
    assert set(again.invoices) == {i.id for i in sales(volume).values() if i.updated_at > cutoff}
    assert {paid.id, reopened.id, voided.id, deleted.id, sent.id} <= set(again.invoices)
    assert len(again.invoices) < 20
    got = again.invoices
    assert got[paid.id].balance == 0 and got[reopened.id].balance == Decimal("10.00")
    assert got[voided.id].voided and got[deleted.id].deleted and got[sent.id].source_sent
    edge = (seen.customers - timedelta(seconds=1)).replace(microsecond=0)
    changed = {c.id for c in volume.customers.values() if c.is_customer and c.updated_at > edge}
    assert customer.id in changed and set(again.customers) == changed and len(changed) < 5
    assert not again.customers[customer.id].active
    assert world.sim.counters.requests == {"contacts": 1, "invoices": 1, "payments": 1, "creditnotes": 1}
    assert not any(p.full_sync_complete for p in again.pages)
    new = [p for p in again.payments.values() if p.allocations[0].invoice_ref == paid.id and not p.deleted]
    assert len(new) == 1 and new[0].allocations[0].source_kind == "payment"  # paid in full, just now
    gone = [p for p in again.payments.values() if p.allocations[0].invoice_ref == reopened.id and p.deleted]
    assert gone  # a Xero payment is never edited: the refund deleted it (and recorded the rest anew)
    assert Cursor.from_dict(again.cursor).seen.invoices == world.now()  # Xero's clock as it answered


def test_pages_fetched_ahead_are_the_pages_read_one_at_a_time(world, volume):
    """Same pages, cursors and call counts; only the listing requests overlap (within the cap)."""
    one = pull(world.connector(volume.id, page_size=300, concurrent=1))
    sequential = listed(world.sim)
    world.sim.limits.gauge.peak.clear()
    world.sim.latency = 0.05  # long enough for requests to overlap
    ahead = pull(world.connector(volume.id, page_size=300, concurrent=3))
    assert 1 < world.sim.limits.gauge.peak[volume.id] <= 3

    def shape(result):
        return [(p.entity, p.of("customers"), p.of("invoices"), p.cursor, p.api_calls, p.full_sync_complete)
                for p in result.pages]  # fmt: skip

    assert shape(ahead) == shape(one) and set(ahead.invoices) == set(sales(volume))
    assert listed(world.sim) == {k: 2 * n for k, n in sequential.items()}  # the same requests, twice


def listed(sim) -> dict[str, int]:
    return {name: n for name, n in sim.counters.requests.items() if name != "token"}


def test_pages_asked_ahead_stay_few_while_the_pages_are_read_slowly(world, volume):
    """Memory: a pull asks at most `PAGES_HELD` pages beyond Xero's 5 in flight ahead of the
    page it has read, and only pages a sequential pull asks for, however long each page takes."""
    one = pull(world.connector(volume.id, page_size=300, concurrent=1))
    sequential = listed(world.sim)
    world.sim.counters.reset()
    ahead = 5 + PAGES_HELD
    pages = world.connector(volume.id, page_size=300, concurrent=5).pages(None, full=True)
    read = []
    for page in pages:  # each page read only once the fetch ahead has gone as far as it may
        read.append(page)
        expected = min(len(read) + ahead, sum(sequential.values()))
        assert eventually(lambda: sum(listed(world.sim).values()) >= expected)  # noqa: B023
        time.sleep(0.02)  # room for a request too many, which would show below
        asked = listed(world.sim)
        assert sum(asked.values()) == expected
        assert all(n <= sequential.get(name, 0) for name, n in asked.items()), asked
    assert listed(world.sim) == sequential
    assert [p.cursor for p in read] == [p.cursor for p in one.pages]


def eventually(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class MeetingSimulator(XeroSimulator):
    """Answers the first request of each listing named in `meet` only once all of them have
    arrived: asked one after the other, the first waits `timeout` and gets a 500."""

    def __init__(self, *args, meet: tuple[str, ...], timeout: float = 5.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.meeting = threading.Barrier(len(meet), timeout=timeout)
        self._waiting = set(meet)
        self._lock = threading.Lock()

    def handle(self, request):
        name = self.endpoint(request)
        with self._lock:
            first = name in self._waiting
            self._waiting.discard(name)
        if first:
            self.meeting.wait()
        return super().handle(request)


def test_a_pass_starts_with_the_first_two_listings_in_flight_together(clock, store, sample):
    """Contacts' and invoices' first pages are asked together (each listing's pageCount
    comes with its first page), not a round apart; still the requests of a sequential pull."""
    with MeetingSimulator([sample], clock=clock, limits=ROOMY, meet=("contacts", "invoices")) as sim:
        world = XeroWorld(sim, clock, store)
        world.connect(sample.id)
        result = pull(world.connector(sample.id))
    assert not sim.meeting.broken and sim.errors == []
    assert set(result.invoices) == set(sales(sample)) and result.pages[-1].full_sync_complete
    assert sim.counters.requests == {"contacts": 2, "invoices": 1, "payments": 1, "creditnotes": 1}


def test_resume_mid_full_pull(world, volume):
    # contacts and the first 1000 invoices (one at a time: fetched-ahead pages would be dropped)
    head = pull(world.connector(volume.id, concurrent=1), limit=2)
    assert [p.entity for p in head.pages] == ["customers", "invoices"]
    rest = pull(world.connector(volume.id), head.cursor)  # a new process, the committed cursor
    assert set(head.invoices) | set(rest.invoices) == set(sales(volume))
    assert not set(head.invoices) & set(rest.invoices)
    assert world.sim.counters.requests == {"contacts": 1, "invoices": 3, **ledger_requests(volume)}
    assert rest.pages[-1].full_sync_complete

    world.sim.counters.reset()
    again = pull(world.connector(volume.id), head.cursor, full=True)  # full: from scratch
    assert set(again.invoices) == set(sales(volume)) and again.pages[-1].full_sync_complete
    assert world.sim.counters.requests == {"contacts": 1, "invoices": 3, **ledger_requests(volume)}


def test_a_supplier_becomes_a_customer_with_its_first_sales_invoice(world, volume):
    supplier = sorted(suppliers_only(volume))[0]
    first = pull(world.connector(volume.id))
    assert supplier in Cursor.from_dict(first.cursor).held
    with world.sim.mutate(volume.id) as books:
        invoice = mutations.add_invoice(books, supplier, Decimal("45.00"), START, email_sent=True)
    world.sim.counters.reset()

    again = pull(world.connector(volume.id), first.cursor)
    assert [p.entity for p in again.pages] == ["customers", "customers", "invoices", "payments", "credits"]
    promotion = again.pages[1]
    assert [c.ref for c in promotion.of("customers")] == [supplier] and promotion.api_calls == 1
    assert invoice.id in again.invoices
    cursor = Cursor.from_dict(again.cursor)
    assert supplier not in cursor.held and supplier in cursor.promoted
    assert world.sim.counters.requests == {"contacts": 2, "invoices": 1, "payments": 1, "creditnotes": 1}

    with world.sim.mutate(volume.id) as books:  # still not IsCustomer, but imported now
        mutations.rename_customer(books, supplier, "Northwind Trading", START + timedelta(hours=1))
    renamed = pull(world.connector(volume.id), again.cursor)
    assert renamed.customers[supplier].display_name == "Northwind Trading"


def test_malformed_records_are_quarantined(world, sample):
    broken_contact = next(c for c in sample.customers.values() if c.name == "Typo Tiles LLC")
    broken_invoice = next(i for i in sales(sample).values() if i.status == "open")
    with world.sim.mutate(sample.id) as books:
        books.customers[broken_contact.id].name = ""
        books.invoices[broken_invoice.id].customer_id = ""
        books.revision += 1
    result = pull(world.connector(sample.id))
    reasons = {(q.entity, q.ref): q.reason for q in result.quarantined}
    assert reasons == {
        ("customers", broken_contact.id): "missing Name",
        ("invoices", broken_invoice.id): "missing Contact.ContactID",
    }
    assert broken_contact.id not in result.customers and broken_invoice.id not in result.invoices
    assert len(result.invoices) == len(sales(sample)) - 1


def test_clients_are_isolated_from_the_sdk_configuration_cache(world, volume, clock):
    """Two tenants on two base URLs in one process, with a poisoned process-wide default."""
    other = generate_company("xero", seed=5, customers=4, invoices=12, today=TODAY)
    poisoned = Configuration()
    poisoned.proxy = "http://127.0.0.1:9"  # would make every request fail
    poisoned.oauth2_token = OAuth2Token(client_id="someone-else")
    Configuration.set_default(poisoned)
    try:
        with XeroSimulator([other], clock=clock, limits=ROOMY) as second:
            elsewhere = XeroWorld(second, clock, world.engine)
            elsewhere.connect(other.id)
            one, two = world.connector(volume.id), elsewhere.connector(other.id)
            first, second_pull = pull(one), pull(two)
            assert set(second_pull.invoices) == set(sales(other))
            assert second.counters.requests == {"contacts": 1, "invoices": 1, **ledger_requests(other)}
        assert set(first.invoices) == set(sales(volume))
        configs = [c.client.api.api_client.configuration for c in (one, two)]
        assert configs[0] is not configs[1] and configs[0].oauth2_token is not configs[1].oauth2_token
        assert Configuration._default.proxy == "http://127.0.0.1:9"  # the cache was not touched
    finally:
        Configuration.set_default(None)


@pytest.mark.parametrize("size", [1000, 3], ids=["xero-max", "tiny-pages"])
def test_pages_follow_page_size(world, sample, size):
    result = pull(world.connector(sample.id, page_size=size))
    assert set(result.invoices) == set(sales(sample))
    assert len(result.customers) == len(sample.customers)
    contact_pages = math.ceil(len(sample.customers) / size)
    invoice_pages = math.ceil(len(sales(sample)) / size)
    ledger = ledger_requests(sample, size)
    assert world.sim.counters.requests == {"contacts": contact_pages + 1, "invoices": invoice_pages, **ledger}
    assert [p.full_sync_complete for p in result.pages].count(True) == 1
    assert result.pages[-1].full_sync_complete


class ClocklessSimulator(XeroSimulator):
    """Answers GET /Invoices without the envelope's DateTimeUTC."""

    def handle(self, request):
        response = super().handle(request)
        if self.endpoint(request) == "invoices" and response.status == 200:
            response.body = re.sub(rb'"DateTimeUTC":"[^"]*",', b"", response.body, count=1)
        return response


@pytest.mark.parametrize("concurrent", [1, 5], ids=["one-at-a-time", "fetched-ahead"])
def test_an_answer_without_its_datetimeutc_stops_the_pull(clock, store, sample, concurrent):
    """Where the next pass starts is Xero's clock: without it, nothing of the listing is yielded."""
    with ClocklessSimulator([sample], clock=clock, limits=ROOMY) as sim:
        world = XeroWorld(sim, clock, store)
        world.connect(sample.id)
        pages, stopped = [], "^Xero answered invoices page 1 without a usable DateTimeUTC:"
        with pytest.raises(ConnectorError, match=stopped):
            for page in world.connector(sample.id, concurrent=concurrent).pages(None):
                pages.append(page)
    assert pages and {p.entity for p in pages} == {"customers"}
