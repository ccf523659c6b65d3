"""The orchestrator on SQLite and PostgreSQL with a scripted page source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, text, update

from connectors.base import ConnectorError
from portal_rules.records import CustomerRecord, InvoiceRecord
from portal_rules.types import CompanyPolicy, Plan
from store.leases import renew, try_acquire
from store.tables import Contact, Customer, Invoice, Lease
from sync.orchestrator import sync_company
from tests.sync.scripted import Killed, ScriptedSource

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
POLICY = CompanyPolicy(plan=Plan.PRO, timezone="America/New_York")


def customers() -> list[CustomerRecord]:
    return [
        CustomerRecord("1", "Café Müller", True, ("ap@cafe.example; boss@cafe.example",)),
        CustomerRecord("2", "Old Client", False, ("old@client.example",)),
        CustomerRecord("3", "Łódź Sp. z o.o.", True, ("ap@lodz.example", "not-an-email")),
    ]


def invoice(ref: str, customer: str, balance: str, *, sent: bool = True, **kw) -> InvoiceRecord:
    return InvoiceRecord(
        ref,
        customer,
        f"INV-{ref}",
        date(2026, 10, 1),
        date(2026, 10, 31),
        "USD",
        Decimal("100.00"),
        Decimal(balance),
        sent,
        **kw,
    )


def invoices() -> list[InvoiceRecord]:
    return [
        invoice("10", "1", "100.00"),
        invoice("11", "1", "0.00"),
        invoice("12", "1", "50.00", sent=False),
        invoice("13", "3", "0.00", voided=True),
        invoice("14", "2", "70.00"),
    ]


def run(engine, source, **kw):
    return sync_company(
        engine, "acme", kw.pop("policy", POLICY), source, owner="test", clock=lambda: NOW, **kw
    )


def snapshot(engine) -> dict:
    with engine.connect() as c:
        return {
            "invoices": c.execute(text("SELECT * FROM portal_invoices ORDER BY invoice_ref")).all(),
            "customers": c.execute(text("SELECT * FROM portal_customers ORDER BY customer_ref")).all(),
            "accounts": c.execute(text("SELECT * FROM portal_accounts ORDER BY customer_ref, email")).all(),
            "adjustments": c.execute(text("SELECT invoice_ref, amount FROM adjustments ORDER BY id")).all(),
            "stored": c.execute(text("SELECT ref, deleted, visible FROM invoices ORDER BY ref")).all(),
        }


def test_full_sync_fills_the_portal_views(company):
    summary = run(company, ScriptedSource(customers(), invoices()))
    assert summary.status == "ok", summary.error
    assert (summary.customers, summary.invoices, summary.adjustments) == (2, 5, 0)
    view = snapshot(company)
    assert [row.invoice_ref for row in view["invoices"]] == ["10", "11"]  # unsent, voided, hidden customer
    assert [(row.customer_ref, Decimal(str(row.balance_due))) for row in view["customers"]] == [
        ("1", Decimal("100")),
        ("3", Decimal("0")),
    ]
    accounts = [(row.customer_ref, row.email, row.status, bool(row.eligible)) for row in view["accounts"]]
    assert accounts == [
        ("1", "ap@cafe.example", "not_invited", True),
        ("1", "boss@cafe.example", "not_invited", False),  # not primary: needs an admin's enable
        ("3", "ap@lodz.example", "not_invited", True),
        ("3", "not-an-email", "not_invited", False),
    ]


def test_rerun_is_idempotent_and_reopening_is_one_adjustment(company):
    source = ScriptedSource(customers(), invoices())
    run(company, source)
    source.changes = [invoice("11", "1", "25.00")]  # refund reopens a paid invoice
    assert run(company, source).adjustments == 1
    assert run(company, source).adjustments == 0  # the same reopening seen again
    adjustments = [(ref, Decimal(str(amount))) for ref, amount in snapshot(company)["adjustments"]]
    assert adjustments == [("11", Decimal("25"))]
    source.changes = [invoice("11", "1", "0.00")]
    run(company, source)
    source.changes = [invoice("11", "1", "40.00")]
    assert run(company, source).adjustments == 1  # a second reopening is a second adjustment


def test_local_state_survives_syncs(company):
    source = ScriptedSource(customers(), invoices())
    run(company, source)
    with company.begin() as c:
        c.execute(update(Invoice).where(Invoice.ref == "12").values(sent_override=True))
        c.execute(update(Customer).where(Customer.ref == "1").values(reminders_paused=True))
        c.execute(update(Contact).where(Contact.email == "ap@cafe.example").values(portal_status="pending"))
    source.changes = [invoice("12", "1", "45.00", sent=False)]
    run(company, source)
    run(company, source, full=True)
    with company.connect() as c:
        assert c.scalar(text("SELECT sent_override FROM invoices WHERE ref='12'")) in (True, 1)
        assert c.scalar(text("SELECT reminders_paused FROM customers WHERE ref='1'")) in (True, 1)
        assert c.scalar(text("SELECT status FROM portal_accounts WHERE email='ap@cafe.example'")) == "pending"
        assert c.scalar(text("SELECT COUNT(*) FROM portal_invoices WHERE invoice_ref='12'")) == 1


def test_killed_between_pages_then_rerun_equals_uninterrupted(company, store_url):
    reference_engine = company
    run(reference_engine, ScriptedSource(customers(), invoices()))
    expected = snapshot(reference_engine)
    with company.begin() as c:
        for table in ("invoices", "contacts", "customers", "sync_cursors", "sync_runs", "adjustments_log"):
            c.execute(text(f"DELETE FROM {table}"))
    with pytest.raises(Killed):
        run(company, ScriptedSource(customers(), invoices(), kill_after_pages=2))
    assert snapshot(company) != expected
    summary = run(company, ScriptedSource(customers(), invoices()))
    assert summary.status == "ok"
    assert snapshot(company) == expected
    with company.connect() as c:
        statuses = [row[0] for row in c.execute(text("SELECT status FROM sync_runs ORDER BY id"))]
    assert statuses == ["interrupted", "ok"]


def test_full_sync_marks_what_the_source_lost_as_deleted(company):
    source = ScriptedSource(customers(), invoices())
    run(company, source)
    source.invoices = [i for i in invoices() if i.ref != "10"]
    source.customers = [c for c in customers() if c.ref != "3"]
    assert run(company, source, full=True).status == "ok"
    view = snapshot(company)
    assert [row.invoice_ref for row in view["invoices"]] == ["11"]
    assert [row.customer_ref for row in view["customers"]] == ["1"]
    assert ("10", True, False) in [(r.ref, bool(r.deleted), bool(r.visible)) for r in view["stored"]]


def test_customer_turning_inactive_leaves_the_portal(company):
    source = ScriptedSource(customers(), invoices())
    run(company, source)
    source.changes = [replace(customers()[0], active=False)]
    run(company, source)
    view = snapshot(company)
    assert [row.customer_ref for row in view["customers"]] == ["3"]
    assert view["invoices"] == []
    assert all(row.customer_ref != "1" for row in view["accounts"])
    with company.connect() as c:
        assert c.scalar(text("SELECT active FROM customers WHERE ref='1'")) in (False, 0)


def test_inactive_customers_imported_by_setting(company):
    policy = replace(POLICY, import_inactive_customers=True)
    run(company, ScriptedSource(customers(), invoices()), policy=policy)
    view = snapshot(company)
    assert [row.customer_ref for row in view["customers"]] == ["1", "2", "3"]
    assert [row.invoice_ref for row in view["invoices"]] == ["10", "11", "14"]


def test_a_second_sync_of_the_same_company_is_skipped(company):
    assert try_acquire(company, "sync:acme", "other-worker", timedelta(minutes=5))
    summary = run(company, ScriptedSource(customers(), invoices()))
    assert summary.status == "skipped"
    assert snapshot(company)["stored"] == []


def test_a_deletion_carrying_only_the_id_hides_the_row_and_keeps_its_data(company):
    source = ScriptedSource(customers(), invoices())
    run(company, source)
    bare = InvoiceRecord("10", "", None, None, None, "", Decimal(0), Decimal(0), False, deleted=True)
    gone_customer = CustomerRecord("3", "", True, (), deleted=True)
    source.changes = [bare, gone_customer]
    run(company, source)
    with company.connect() as c:
        row = c.execute(
            text("SELECT customer_ref, doc_number, deleted, visible FROM invoices WHERE ref='10'")
        ).one()
        contact = c.execute(text("SELECT COUNT(*) FROM portal_accounts WHERE customer_ref='3'")).scalar()
    assert (row[0], row[1], bool(row[2]), bool(row[3])) == ("1", "INV-10", True, False)
    view = snapshot(company)
    assert [r.customer_ref for r in view["customers"]] == ["1"]
    assert contact == 0


def test_a_lease_left_by_a_killed_process_on_this_host_is_taken_over(company):
    import subprocess
    import sys

    from store.owners import owner_id

    script = [sys.executable, "-c", "import os; print(os.getpid())"]
    dead = subprocess.run(script, capture_output=True, text=True)
    owner = owner_id(int(dead.stdout), "gone")
    assert try_acquire(company, "sync:acme", owner, timedelta(minutes=5))
    summary = run(company, ScriptedSource(customers(), invoices()))
    assert summary.status == "ok"


@dataclass
class AskingSource(ScriptedSource):
    """A source that, like the real connectors, can say by id which records it still has."""

    still_there: set[str] = field(default_factory=set)  # missed by the pull, yet in the books
    asked: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    presence_calls: int = 0  # one request per entity asked about, as a connector counts them

    def confirm_present(self, entity: str, refs) -> set[str]:
        self.asked.append((entity, tuple(refs)))
        self.presence_calls += 1
        return {ref for ref in refs if ref in self.still_there}


def test_an_incremental_sync_names_the_customers_its_records_belong_to(company):
    source = ScriptedSource(customers(), invoices())
    first = run(company, source)
    assert first.full and first.every_customer and first.customers_touched == set()  # all are recomputed
    source.changes = [invoice("14", "2", "10.00"), CustomerRecord("3", "Renamed", True, ())]
    summary = run(company, source)
    assert summary.status == "ok" and not summary.full
    assert summary.customers_touched == {"2", "3"}  # whose health the sync recomputes
    assert "customers_touched" not in summary.as_json()


@pytest.mark.parametrize("asks", [False, True], ids=["store-decides", "source-asked"])
def test_the_end_of_a_full_pull_looks_for_missed_records_only_of_kinds_stored_before_it(company, asks):
    looked_in: list[list[str]] = []

    def record(conn, cursor, statement, *args):
        if re.search(r"seen_run IS NULL OR \w+\.seen_run <", statement):
            looked_in[-1].append(re.search(r"FROM (\w+)", statement).group(1))

    event.listen(company, "before_cursor_execute", record)
    try:
        source = (AskingSource if asks else ScriptedSource)(customers(), invoices())
        looked_in.append([])
        assert run(company, source).status == "ok"  # a first sync: nothing stored could be missed
        looked_in.append([])
        source.invoices = [i for i in invoices() if i.ref != "10"]
        assert run(company, source, full=True).status == "ok"
    finally:
        event.remove(company, "before_cursor_execute", record)
    assert looked_in == [[], ["customers", "invoices"]]  # no payment or credit was ever stored
    assert ("10", True) in [(r.ref, bool(r.deleted)) for r in snapshot(company)["stored"]]
    if asks:
        assert source.asked == [("invoices", ("10",))]


def test_a_record_a_full_pull_missed_is_asked_for_by_id_before_it_is_marked_deleted(company):
    source = AskingSource(customers(), invoices())
    run(company, source)
    # The full pull misses invoices 10 and 11 (say a deletion shifted the paging): the books
    # still have 11, not 10. Only 10 may leave the portal.
    source.invoices = [i for i in invoices() if i.ref not in {"10", "11"}]
    source.still_there, source.asked = {"11"}, []
    pages = []
    summary = run(company, source, full=True, on_page=lambda _, page: pages.append(page))
    assert summary.status == "ok"
    assert ("invoices", ("10", "11")) in [(e, tuple(sorted(r))) for e, r in source.asked]
    # the requests that confirmed the deletions are the sync's API calls too (sync_runs)
    assert summary.api_calls == len(pages) + len(source.asked) > len(pages)
    with company.connect() as c:
        stored = c.execute(text("SELECT api_calls FROM sync_runs WHERE id = :id"), {"id": summary.run_id})
        assert stored.scalar_one() == summary.api_calls
    stored = {r.ref: (bool(r.deleted), bool(r.visible)) for r in snapshot(company)["stored"]}
    assert stored["10"] == (True, False) and stored["11"] == (False, True)


def test_a_record_on_the_last_page_vouches_only_for_its_own_kind(company):
    """QuickBooks numbers customers and transactions apart: an invoice (or credit memo) on
    the full pull's last page may share its id with a customer the books lost. That
    customer must still leave the portal (it stayed, with its balance, until the next
    full sync that happened to end on another page)."""
    source = AskingSource(customers(), invoices())
    run(company, source)
    source.customers = [c for c in customers() if c.ref != "3"]
    source.invoices = [*invoices(), invoice("3", "1", "5.00")]  # the last page's record "3"
    assert run(company, source, full=True).status == "ok"
    assert ("customers", ("3",)) in source.asked
    assert [row.customer_ref for row in snapshot(company)["customers"]] == ["1"]


@dataclass
class TakenOverSource(ScriptedSource):
    """Between two pages, the sync's lease expires and another worker takes it (a stalled
    process): the stalled sync must stop before it writes another page."""

    engine: object = None

    def pages(self, cursor, *, full=False):
        for number, page in enumerate(super().pages(cursor, full=full)):
            if number == 1:
                with self.engine.begin() as c:
                    c.execute(update(Lease).where(Lease.name == "sync:acme").values(owner="elsewhere:1:new"))
            yield page


def test_a_sync_whose_lease_was_taken_over_writes_no_further_page(company):
    summary = run(company, TakenOverSource(customers(), invoices(), engine=company))
    assert summary.status == "failed" and "lost the sync lease" in summary.error
    with company.connect() as c:
        # the first page was committed; the second, read after the takeover, was not (its
        # transaction renews the lease first), nor anything after
        assert c.execute(text("SELECT ref FROM customers ORDER BY ref")).scalars().all() == ["1"]
        assert c.execute(text("SELECT COUNT(*) FROM invoices")).scalar() == 0
        reason = c.execute(text("SELECT error FROM sync_runs ORDER BY id DESC")).scalar()
    assert "lost the sync lease" in reason
    with company.begin() as c:
        assert not renew(c, "sync:acme", "test", timedelta(minutes=5))  # still the other's
        assert renew(c, "sync:acme", "elsewhere:1:new", timedelta(minutes=5))


@dataclass
class OverlappedSource(ScriptedSource):
    """Between two pages of a running sync, another worker (its clock `other_clock`)
    tries to sync the same company."""

    engine: object = None
    other_clock: object = None
    other: list = field(default_factory=list)

    def pages(self, cursor, *, full=False):
        for number, page in enumerate(super().pages(cursor, full=full)):
            if number == 1:
                source = ScriptedSource(customers(), invoices())
                self.other.append(
                    sync_company(self.engine, "acme", POLICY, source, owner="other", clock=self.other_clock)
                )
            yield page


def _skewed(by: timedelta):
    return lambda: datetime.now(UTC) + by


@pytest.mark.parametrize(
    ("this_clock", "other_clock"),
    [
        (_skewed(timedelta(0)), _skewed(timedelta(minutes=5))),
        (_skewed(-timedelta(minutes=5)), _skewed(timedelta(0))),
    ],
    ids=["the other worker's clock 5 min ahead", "this worker's clock 5 min behind"],
)
def test_a_worker_whose_clock_is_off_never_takes_a_running_sync_over(company, this_clock, other_clock):
    """SPEC §11: never two runs of a company at once, whatever the skew between the workers'
    machines: a lease is judged on the store's clock, not the caller's."""
    source = OverlappedSource(customers(), invoices(), engine=company, other_clock=other_clock)
    summary = sync_company(company, "acme", POLICY, source, owner="this", clock=this_clock)
    [other] = source.other
    assert (other.status, summary.status) == ("skipped", "ok"), (other.error, summary.error)
    with company.connect() as c:
        assert c.execute(text("SELECT worker, status FROM sync_runs")).all() == [("this", "ok")]


def test_a_full_resync_still_records_a_reopened_invoice(company):
    source = ScriptedSource(customers(), invoices())
    run(company, source)
    source.invoices = [invoice("11", "1", "25.00") if i.ref == "11" else i for i in invoices()]
    summary = run(company, source, full=True)
    assert (summary.status, summary.invoices, summary.adjustments) == ("ok", 5, 1)
    assert [(ref, Decimal(str(amount))) for ref, amount in snapshot(company)["adjustments"]] == [
        ("11", Decimal("25"))
    ]


def test_an_invoice_read_twice_in_a_first_pull_is_compared_with_its_first_reading(company):
    """A record can come again on a later page of one pull (paging shifted under it): the
    second reading is written over the first, which counts as stored (here: paid, then reopened)."""
    twice = [invoice("11", "1", "0.00"), invoice("10", "1", "100.00"), invoice("11", "1", "30.00")]
    summary = run(company, ScriptedSource(customers(), twice))
    assert (summary.status, summary.invoices, summary.adjustments) == ("ok", 3, 1)
    view = snapshot(company)
    assert [(r.invoice_ref, Decimal(str(r.balance))) for r in view["invoices"]] == [
        ("10", Decimal("100")),
        ("11", Decimal("30")),
    ]


class _Echoing(ScriptedSource):
    """A source whose API answers an error that echoes the request's credentials (a proxy's
    error page, an SDK printing the request)."""

    def pages(self, cursor: dict | None, *, full: bool = False):
        yield from ()
        raise ConnectorError(
            "HTTP 400 for GET /query: Authorization: Bearer at.SECRET-ACCESS refresh_token=rt-SECRET-99 "
            "client s3cr3t-client-value"
        )


def test_a_failed_runs_stored_error_keeps_no_secret_the_logs_hide(company):
    """A run's error is stored, then printed by `sync`, `status` and `history`: the secrets the
    log lines hide (a bearer token, a `refresh_token=`, a value a connector registered) were
    kept there as the API wrote them."""
    from sync.logging import REDACTOR

    REDACTOR.remember("s3cr3t-client-value")
    summary = run(company, _Echoing())
    with company.connect() as c:
        stored = c.execute(text("SELECT error FROM sync_runs")).scalar_one()
    assert summary.status == "failed" and stored == summary.error
    assert "HTTP 400 for GET /query" in stored
    assert not any(s in stored for s in ("at.SECRET-ACCESS", "rt-SECRET-99", "s3cr3t-client-value")), stored
