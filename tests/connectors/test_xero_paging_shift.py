"""A record changed during a Xero pass pushes no other record off the pass's pages.

Each listing is read page by page number. Ordered by UpdatedDateUTC, an invoice paid after
its page was read moved to the end of the listing, every later invoice one position back,
and the invoice at the next page boundary was on neither page. The pass's watermark, the
newest UpdatedDateUTC it read, then passed that invoice too, so it stayed out of the store
until a manual --full. The same held for contacts, payments and credit notes, in full and
incremental passes alike.

Most tests run real syncs (`sync_company`) against the simulator over HTTP and read the
store's rows; the cursor tests read what `pages()` yields.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from connectors.simulators import mutations
from connectors.simulators.generator import generate_company
from connectors.simulators.model import SimCompany
from connectors.simulators.xero import XeroSimulator
from connectors.xero.cursor import Cursor
from portal_rules.records import Page
from portal_rules.types import CompanyPolicy, Plan
from store.tables import Customer, Invoice
from sync.orchestrator import SyncSummary, sync_company
from tests.connectors.xero_fixtures import (  # noqa: F401 - fixtures
    ROOMY,
    START,
    TODAY,
    FakeClock,
    XeroWorld,
    clock_fixture,
    pull,
    store_fixture,
)

POLICY = CompanyPolicy(plan=Plan.PRO, timezone="UTC")
PAGE = 100  # nine pages of sales invoices, so a pass has page boundaries to lose records at
PAUSE = timedelta(seconds=10)  # the time around a change made between two pages


@pytest.fixture(name="books")
def books_fixture() -> SimCompany:
    return generate_company("xero", seed=21, customers=60, invoices=1000, today=TODAY)


@contextmanager
def served_by(simulator: type[XeroSimulator], clock, store, books: SimCompany) -> Iterator[XeroWorld]:
    """`books` served by a `simulator` (a subclass changing the books mid-pull), connected."""
    with simulator([books], clock=clock, limits=ROOMY) as sim:
        world = XeroWorld(sim, clock, store)
        world.connect(books.id)
        yield world


@pytest.fixture(name="world")
def world_fixture(clock, store, books) -> Iterator[XeroWorld]:
    with served_by(PayingSimulator, clock, store, books) as world:
        yield world


class PayingSimulator(XeroSimulator):
    """With `armed`, pays an invoice of the first invoices page it answers in full, before
    the pull can ask for the next page (the next pages' number is in that answer): pages
    fetched ahead are all asked after the payment."""

    armed = False
    paid: str | None = None

    def handle(self, request):
        response = super().handle(request)
        first = self.armed and self.paid is None and self.endpoint(request) == "invoices"
        if first and response.status == 200:
            (tenant,) = self.tenants
            rows = json.loads(response.body)["Invoices"]
            ref = next(row["InvoiceID"] for row in rows if row["Status"] == "AUTHORISED")
            self.paid = pay_between_pages(self, self.clock, tenant, ref)
        return response


def pay_between_pages(sim: XeroSimulator, clock: FakeClock, tenant: str, ref: str) -> str:
    """Pay `ref` in full some time after the page before was read and some time before the
    next page is: a pass's watermark must be no later than its first page."""
    clock.advance(PAUSE.total_seconds())
    with sim.mutate(tenant) as books:
        mutations.pay(books, ref, books.invoices[ref].balance, moment(clock))
    clock.advance(PAUSE.total_seconds())
    return ref


class PayAfterFirstInvoicesPage:
    """`on_page`: once the first invoices page is committed, pay an invoice of that page."""

    def __init__(self, world: XeroWorld, tenant: str) -> None:
        self.world, self.tenant = world, tenant
        self.paid: str | None = None
        self.balance_read: Decimal | None = None

    def __call__(self, _: SyncSummary, page: Page) -> None:
        if self.paid is not None or page.entity != "invoices":
            return
        invoice = next(i for i in page.records if i.balance > 0 and not (i.voided or i.deleted or i.draft))
        self.balance_read = invoice.balance
        self.paid = pay_between_pages(self.world.sim, self.world.clock, self.tenant, invoice.ref)


class RenameAfterFirstContactsPage:
    """`on_page`: once the first contacts page is committed, rename a contact of that page."""

    def __init__(self, world: XeroWorld, tenant: str) -> None:
        self.world, self.tenant = world, tenant
        self.renamed: str | None = None

    def __call__(self, _: SyncSummary, page: Page) -> None:
        if self.renamed is not None or page.entity != "customers" or not page.records:
            return
        ref = page.records[0].ref
        clock = self.world.clock
        clock.advance(PAUSE.total_seconds())
        with self.world.sim.mutate(self.tenant) as books:
            mutations.rename_customer(books, ref, "Renamed Mid-Pass Ltd", moment(clock))
        clock.advance(PAUSE.total_seconds())
        self.renamed = ref


def moment(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def sync(world: XeroWorld, company: SimCompany, *, on_page=None, full=False, **options) -> SyncSummary:
    connector = world.connector(company.id, **options)
    summary = sync_company(
        world.engine, company.id, POLICY, connector, full=full, owner="t", clock=world.now, on_page=on_page
    )
    assert summary.status == "ok", summary.error
    return summary


def stored_invoices(world: XeroWorld, company: SimCompany) -> dict[str, Decimal]:
    """Live invoices in the store: ref -> balance."""
    with world.engine.connect() as connection:
        live = (Invoice.company_id == company.id) & Invoice.deleted.is_(False)
        return dict(connection.execute(select(Invoice.ref, Invoice.balance).where(live)).all())


def stored_customers(world: XeroWorld, company: SimCompany) -> dict[str, str]:
    """Customers in the store: ref -> name."""
    with world.engine.connect() as connection:
        live = (Customer.company_id == company.id) & Customer.deleted.is_(False)
        return dict(connection.execute(select(Customer.ref, Customer.display_name).where(live)).all())


def invoices_in_the_books(company: SimCompany) -> dict[str, Decimal]:
    """Sales invoices not deleted: ref -> balance (Xero owes nothing on a voided one). The
    store keeps those of contacts it does not import (archived) too."""
    return {
        i.id: Decimal(0) if i.status == "voided" else i.balance
        for i in company.invoices.values()
        if i.type == "ACCREC" and i.status != "deleted"
    }


def customers_in_the_books(company: SimCompany) -> dict[str, str]:
    """Active contacts flagged IsCustomer or named by a sales invoice: ref -> name (the
    company's policy leaves inactive customers out of the store)."""
    invoiced = {i.customer_id for i in company.invoices.values() if i.type == "ACCREC"}
    return {
        c.id: c.name
        for c in company.customers.values()
        if (c.is_customer or c.id in invoiced) and c.active and not c.gdpr_request
    }


def test_an_invoice_paid_during_a_full_pass_moves_no_other_invoice_off_its_pages(world, books):
    paying = PayAfterFirstInvoicesPage(world, books.id)
    sync(world, books, full=True, on_page=paying, concurrent=1, page_size=PAGE)
    assert paying.paid is not None
    world.clock.advance(300)
    sync(world, books, concurrent=1, page_size=PAGE)
    assert stored_invoices(world, books) == invoices_in_the_books(books)
    assert stored_invoices(world, books)[paying.paid] == 0


def test_an_invoice_paid_while_pages_are_fetched_ahead_moves_no_other_invoice_off_them(world, books):
    world.sim.armed = True
    sync(world, books, full=True, page_size=PAGE)  # Xero's 5 requests in flight
    assert world.sim.paid is not None
    world.clock.advance(300)
    sync(world, books, page_size=PAGE)
    assert stored_invoices(world, books) == invoices_in_the_books(books)
    assert stored_invoices(world, books)[world.sim.paid] == 0


def test_an_incremental_pass_of_many_pages_skips_nothing_and_the_next_reads_what_changed_in_it(world, books):
    sync(world, books, full=True, concurrent=1, page_size=1000)
    world.clock.advance(600)
    open_ = sorted(
        (i for i in books.invoices.values() if i.type == "ACCREC" and i.status == "open" and i.balance > 1),
        key=lambda i: i.id,
        reverse=True,  # changed in the opposite order to their ids: UpdatedDateUTC order is not id order
    )[:250]
    with world.sim.mutate(books.id) as changing:
        for second, invoice in enumerate(open_):
            mutations.pay(changing, invoice.id, Decimal("1.00"), START + timedelta(seconds=300 + second))
    paying = PayAfterFirstInvoicesPage(world, books.id)
    sync(world, books, on_page=paying, concurrent=1, page_size=50)  # 250 changed invoices: five pages
    assert paying.paid is not None
    expected = invoices_in_the_books(books)  # the one paid mid-pass was read before it was paid:
    assert stored_invoices(world, books) == {**expected, paying.paid: paying.balance_read}

    world.clock.advance(300)
    sync(world, books, concurrent=1, page_size=50)
    assert stored_invoices(world, books) == expected and expected[paying.paid] == 0


def test_a_contact_changed_during_a_pass_moves_no_other_contact_off_its_pages(world, books):
    renaming = RenameAfterFirstContactsPage(world, books.id)
    sync(world, books, full=True, on_page=renaming, concurrent=1, page_size=20)  # three pages of contacts
    assert renaming.renamed is not None
    world.clock.advance(300)
    sync(world, books, concurrent=1, page_size=1000)
    assert stored_customers(world, books) == customers_in_the_books(books)
    assert stored_customers(world, books)[renaming.renamed] == "Renamed Mid-Pass Ltd"
    assert stored_invoices(world, books) == invoices_in_the_books(books)


def test_a_pass_resumed_after_a_kill_keeps_the_watermark_of_its_first_pages(world, books):
    """The cursor carries the earliest DateTimeUTC read so far: a change to a page read
    before the kill is read by the pass after the resumed one."""
    head = pull(world.connector(books.id, concurrent=1, page_size=PAGE), limit=2)  # contacts, invoices page 1
    assert [p.entity for p in head.pages] == ["customers", "invoices"]
    paid = next(i.ref for i in head.pages[1].records if i.balance > 0 and not (i.voided or i.draft))
    pay_between_pages(world.sim, world.clock, books.id, paid)
    rest = pull(world.connector(books.id, page_size=PAGE), head.cursor)
    done = Cursor.from_dict(rest.cursor)
    assert done.done and done.seen.invoices == START and done.seen.customers == START
    assert paid not in rest.invoices  # its position was read before the kill
    world.clock.advance(300)
    after = pull(world.connector(books.id, page_size=PAGE), rest.cursor)
    assert after.invoices[paid].balance == 0


# -- cursors of the previous version (2: listings paged in UpdatedDateUTC order) ----------------

SINCE = START - timedelta(hours=1)


def v2_cursor(*, phase: str, page: int, full: bool, since: datetime | None, seen: datetime) -> dict:
    def marks(moment: datetime | None) -> dict:
        return dict.fromkeys(("customers", "invoices", "payments", "credits"), moment and moment.isoformat())

    return {"v": 2, "full": full, "phase": phase, "page": page, "since": marks(since), "seen": marks(seen),
            "held": [], "promoted": []}  # fmt: skip


def change_two_invoices(world: XeroWorld, books: SimCompany) -> set[str]:
    """Two invoices sent ten minutes ago (after SINCE, before the clock)."""
    sales = sorted(i.id for i in books.invoices.values() if i.type == "ACCREC" and i.status == "open")
    with world.sim.mutate(books.id) as changing:
        for ref in sales[:2]:
            mutations.mark_sent(changing, ref, START - timedelta(minutes=10))
    return set(sales[:2])


def test_an_unfinished_v2_full_pass_starts_over(world, books):
    """Its page numbers counted positions in the old order: it is read again from its first page."""
    stored = v2_cursor(phase="invoices", page=3, full=True, since=None, seen=START - timedelta(days=1))
    result = pull(world.connector(books.id, concurrent=1, page_size=PAGE), stored)
    assert set(result.invoices) == {i.id for i in books.invoices.values() if i.type == "ACCREC"}
    assert result.customers and result.pages[-1].full_sync_complete
    done = Cursor.from_dict(result.cursor)
    assert done.done and set(vars_of(done.seen)) == {START}  # its own watermark: Xero's clock


def test_an_unfinished_v2_incremental_pass_starts_over_from_the_same_marks(world, books):
    changed = change_two_invoices(world, books)
    stored = v2_cursor(phase="invoices", page=2, full=False, since=SINCE, seen=SINCE)
    result = pull(world.connector(books.id, concurrent=1, page_size=PAGE), stored)
    assert set(result.invoices) == changed and not result.pages[-1].full_sync_complete
    assert world.sim.counters.requests["contacts"] == 1  # the pass began again with contacts
    done = Cursor.from_dict(result.cursor)
    assert done.done and set(vars_of(done.seen)) == {START}


def test_a_finished_v2_pass_leads_to_an_incremental_one_from_its_marks(world, books):
    changed = change_two_invoices(world, books)
    stored = v2_cursor(phase="done", page=1, full=True, since=None, seen=SINCE)
    result = pull(world.connector(books.id, concurrent=1, page_size=PAGE), stored)
    assert set(result.invoices) == changed and not result.pages[-1].full_sync_complete
    assert world.sim.counters.requests == {"contacts": 1, "invoices": 1, "payments": 1, "creditnotes": 1}
    done = Cursor.from_dict(result.cursor)
    assert done.done and set(vars_of(done.seen)) == {START}


def vars_of(marks) -> list[datetime | None]:
    return [marks.get(entity) for entity in ("customers", "invoices", "payments", "credits")]


class ShiftingSimulator(XeroSimulator):
    """With `armed`, holds invoices page 2 until page 3 has been answered (network latency
    does so at random with pages fetched ahead), and in that moment a sales invoice enters
    the listing at its start: created (a full pass) or changed (an incremental pass), with an
    id that sorts first. Evaluated before it, page 3 never saw the record it pushed back."""

    armed = False
    entered: str | None = None
    change: str = "create"  # or the ref of an invoice to change

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.third_answered = threading.Event()

    def handle(self, request):
        page = request.param("page") if self.endpoint(request) == "invoices" else None
        if self.armed and page == "2" and self.entered is None:
            self.third_answered.wait(10)
            (tenant,) = self.tenants
            with self.mutate(tenant) as books:
                self.entered = self._enter(books)
        response = super().handle(request)
        if page == "3":
            self.third_answered.set()
        return response

    def _enter(self, books: SimCompany) -> str:
        self.clock.advance(1)
        at = moment(self.clock)
        if self.change != "create":
            mutations.pay(books, self.change, books.invoices[self.change].balance, at)
            return self.change
        customer = next(c for c in books.customers.values() if c.is_customer and c.active)
        invoice = mutations.add_invoice(books, customer.id, Decimal("123.45"), at, email_sent=True)
        del books.invoices[invoice.id]
        invoice.id = "00000000-0000-4000-8000-000000000001"
        books.invoices[invoice.id] = invoice
        return invoice.id


@pytest.fixture(name="shifting")
def shifting_fixture(clock, store, books) -> Iterator[XeroWorld]:
    with served_by(ShiftingSimulator, clock, store, books) as world:
        yield world


def test_a_record_entering_the_listing_between_pages_answered_out_of_order_is_read_again(shifting, books):
    """A full pass, pages fetched ahead: invoices page 3 is answered before page 2, and an
    invoice created in between sorts before page 2's end. Page 2's answer counts one more
    record than page 3's did, so page 3 is asked again: the invoice pushed back from page 2
    onto it is read, not lost (before: on neither page, and no later incremental pass
    reads an invoice that did not change)."""
    shifting.sim.armed = True
    sync(shifting, books, full=True, page_size=PAGE)  # Xero's 5 requests in flight
    assert shifting.sim.entered is not None
    stored = stored_invoices(shifting, books)
    in_books = invoices_in_the_books(books)
    assert set(in_books) - set(stored) <= {shifting.sim.entered}  # new: the next pass reads it
    shifting.clock.advance(300)
    sync(shifting, books, page_size=PAGE)
    assert stored_invoices(shifting, books) == invoices_in_the_books(books)


def test_a_change_entering_an_incremental_listing_between_pages_answered_out_of_order_is_kept(
    shifting, books
):
    """An incremental pass of several pages, fetched ahead: an invoice paid while page 2 is
    held enters the If-Modified-Since listing at its start (its id sorts first), pushing an
    invoice changed earlier from page 2 onto page 3, which was answered before. The pass
    after it starts past that earlier change: only asking page 3 again keeps it."""
    sync(shifting, books, full=True, concurrent=1, page_size=1000)
    shifting.clock.advance(600)
    open_ = sorted(
        (i for i in books.invoices.values() if i.type == "ACCREC" and i.status == "open" and i.balance > 1),
        key=lambda i: i.id,
    )
    first, changed = open_[0], open_[1:][: 3 * PAGE - 50]  # three pages of changes, the first id kept
    with shifting.sim.mutate(books.id) as live:
        for invoice in changed:
            mutations.pay(live, invoice.id, live.invoices[invoice.id].balance, moment(shifting.clock))
    shifting.clock.advance(60)
    shifting.sim.armed, shifting.sim.change = True, first.id
    sync(shifting, books, page_size=PAGE)
    assert shifting.sim.entered == first.id
    for _ in range(2):  # and no later pass needs to catch up on anything
        shifting.clock.advance(300)
        sync(shifting, books, page_size=PAGE)
        assert stored_invoices(shifting, books) == invoices_in_the_books(books)
