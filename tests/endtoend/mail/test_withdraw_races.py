"""Reminders taken back before sending (`mailer.withdraw`) while other workers run: two
dispatchers withdrawing the same backlog, a planner re-planning what a withdrawal handed back,
and a replanned reminder carrying the customer's statement (`attach_statement`).

SPEC: a (invoice, offset) reminder is sent at most once, ever, whatever the number of workers;
all reminders due for one customer at the same time go out as one email; no mail is lost;
automatic mail only inside the delivery window.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from mailer import take_back as take_back_module
from mailer.dispatch import DispatchReport, dispatch
from mailer.outbox import parse
from mailer.statement_doc import load_document
from mailer.statement_pdf import render_pdf
from mailer.take_back import Verdict, take_back
from mailer.withdraw import assess
from portal_rules.balances import company_today
from portal_rules.records import InvoiceRecord
from store.history.writes import write_payments
from store.owners import worker_id
from sync.mail import stale_reminders, transport, window_for
from sync.reminders import plan_reminders
from tests.endtoend.mail.conftest import Shop, customer, invoice, iso
from tests.endtoend.mail.test_delivery_windows import WEEKDAYS, utc
from tests.history.books import pay, payment

FRIDAY_EVENING, MONDAY_OPENING = utc("2026-11-20T23:00"), utc("2026-11-23T14:00")  # New York, 9-17
DUE = date(2026, 11, 1)
LISTED = re.compile(r"INV-(c\d+i\d+)\b")
WAIT = 60  # seconds any one process or thread may take before the test gives up on it


# --- a backlog of reminders held over the weekend, some of whose invoices were then paid ------


@dataclass
class Backlog:
    due: dict[str, set[str]]  # customer ref -> refs of its invoices still due
    paid: set[str]  # invoice refs paid while their reminders waited

    @property
    def due_refs(self) -> set[str]:
        return {ref for refs in self.due.values() for ref in refs}


# per customer, by number modulo 4: (invoices, of them paid over the weekend)
SHAPES = {0: (1, 1), 1: (2, 1), 2: (2, 0), 3: (3, 2)}  # withdrawn, replanned, sent as is, replanned


def make_backlog(shop: Shop, customers: int) -> Backlog:
    """Reminders planned on Friday evening for `customers` customers (one email each, held for
    Monday's opening); over the weekend the first invoices of some of them are paid."""
    records, invoices, paid_records = [], [], []
    due: dict[str, set[str]] = {}
    paid: set[str] = set()
    for n in range(1, customers + 1):
        ref = str(n)
        records.append(customer(ref, f"Customer {n}", f"c{n}@example.com"))
        count, paying = SHAPES[n % 4]
        for k in range(count):
            inv = f"c{n}i{k}"
            invoices.append(invoice(inv, ref, DUE, f"{10 + k}.00"))
            if k < paying:
                paid.add(inv)
                paid_records.append(paid_invoice(inv, ref, f"{10 + k}.00"))
            else:
                due.setdefault(ref, set()).add(inv)
    shop.sync(records, invoices)
    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING))
    assert planned.code == 0, planned.err
    assert shop.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'queued'") == customers
    shop.sync_changes(paid_records)
    return Backlog(due, paid)


def paid_invoice(ref: str, customer_ref: str, total: str = "10.00", due: date = DUE) -> InvoiceRecord:
    """The invoice as the next sync brings it once paid: its total, no balance."""
    return replace(invoice(ref, customer_ref, due, total), balance=Decimal(0))


def new_shop(make_shop, url: str, **settings: object) -> Shop:
    return make_shop(
        url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[0], **settings
    )


def listed(message) -> list[str]:
    return LISTED.findall(message.get_body(("plain",)).get_content())


def check_invariants(shop: Shop, smtp, backlog: Backlog) -> None:
    """After the withdrawal: nothing paid was sent, nothing was sent twice, and no paid
    invoice's pair is left in the ledger (never sent, it is due again should the invoice be
    owed again); every still-due pair is sent, by a message that went or is still queued, or
    out of the ledger (to plan again)."""
    counts = Counter(ref for r in smtp.received for ref in listed(r.message))
    assert not set(counts) & backlog.paid, "a reminder listing a paid invoice was sent"
    assert [ref for ref, n in counts.items() if n > 1] == [], "an (invoice, offset) was sent twice"
    ids = Counter(r.message["Message-ID"] for r in smtp.received)
    assert [m for m, n in ids.items() if n > 1] == []
    ledger = dict(shop.rows("SELECT invoice_ref, status FROM reminder_ledger"))
    assert {ref: ledger.get(ref) for ref in backlog.paid} == dict.fromkeys(backlog.paid)
    owners = dict(
        shop.rows(
            "SELECT l.invoice_ref, o.status FROM reminder_ledger l JOIN outbox o ON o.id = l.outbox_id"
            " WHERE l.status = 'sent'"
        )
    )
    for ref in backlog.due_refs:
        if ref in ledger:  # recorded sent: its message went (or waits), never a dropped one
            assert ledger[ref] == "sent", ref
            assert owners[ref] in ("sent", "queued"), (ref, owners[ref])
            assert (owners[ref] == "sent") == (ref in counts), ref
        else:
            assert ref not in counts, ref  # handed back to the planner: not sent yet
    assert shop.scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('sending', 'claimed', 'in_doubt')") == 0


def finish(shop: Shop, smtp, backlog: Backlog) -> None:
    """Plan again what the withdrawal handed back and send it: each still-due invoice reaches
    its customer exactly once, in one email per customer, nothing paid ever does."""
    again = shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING))
    assert again.code == 0, again.err
    sent = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert sent.code == 0, sent.err
    check_invariants(shop, smtp, backlog)
    by_customer = {}
    for r in smtp.received:
        [to] = r.rcpt_tos
        assert to not in by_customer, f"{to} got two emails"
        by_customer[to] = set(listed(r.message))
    assert by_customer == {f"c{ref}@example.com": refs for ref, refs in backlog.due.items()}
    ledger = dict(shop.rows("SELECT invoice_ref, status FROM reminder_ledger"))
    assert ledger == dict.fromkeys(backlog.due_refs, "sent")
    assert shop.scalar("SELECT COUNT(*) FROM outbox WHERE status NOT IN ('sent', 'dropped')") == 0


def run_dispatch(
    shop: Shop, withdraw, *, worker: str | None = None, now: datetime = MONDAY_OPENING
) -> DispatchReport:
    return dispatch(
        shop.engine,
        transport(shop.config),
        now=now,
        window_for=window_for(shop.config),
        withdraw=withdraw,
        worker_id=worker or worker_id(),
    )


class Paused:
    """The real withdrawal, with a pause between its reading (`assess`) and its writing
    (`take_back`) where the test runs `between`: the interleavings a busy store allows."""

    def __init__(self, shop: Shop, between: Callable[[], None]) -> None:
        self.imports_inactive = stale_reminders(shop.config).imports_inactive
        self.between = between
        self.assessed: Verdict | None = None
        self.taken: Verdict | None = None

    def __call__(self, connection, now: datetime, companies) -> Verdict:
        self.assessed = assess(connection, now, companies, self.imports_inactive)
        self.between()
        self.taken = take_back(connection, self.assessed, now)
        return self.taken


class Threads:
    """Run callables in threads; `join` re-raises the first failure, bounded in time."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.results: dict[str, object] = {}

    def start(self, name: str, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                self.results[name] = work()
            except BaseException as exc:  # noqa: BLE001 - re-raised by join
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self) -> dict[str, object]:
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive(), f"{thread.name} still running after {WAIT}s (deadlock?)"
        if self.errors:
            raise self.errors[0]
        return self.results


def repeatedly(start: threading.Barrier, work: Callable[[], object], times: int = 3) -> Callable[[], None]:
    """`work` done `times` times over, once every thread sharing `start` is ready."""

    def run() -> None:
        start.wait()
        for _ in range(times):
            work()

    return run


def popen(shop: Shop, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_DEBUG")}
    return subprocess.Popen(
        [sys.executable, "-m", "sync", "--config", str(shop.path), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# --- 1. two dispatchers withdrawing the same backlog at once -----------------------------------


SUMMARY = re.compile(
    r"mail: (\d+) sent, 0 failed, 0 to retry(?:, (\d+) reminder\(s\) withdrawn: no longer due)?"
    r"(?:, (\d+) to plan again without invoices no longer due)?\n"
)


def test_two_dispatch_processes_withdraw_a_backlog_once(make_shop, store_url, smtp):
    """Two `arsync mail dispatch` processes started together at Monday's opening over 40 held
    reminders (10 wholly stale, 20 partly, 10 wholly due)."""
    shop = new_shop(make_shop, store_url)
    backlog = make_backlog(shop, 40)

    processes = [popen(shop, "mail", "dispatch", "--now", iso(MONDAY_OPENING)) for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=WAIT) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    totals = [0, 0, 0]
    for process, (out, err) in zip(processes, outputs, strict=True):
        said = [line for line in err.splitlines() if not line.startswith("Note: the reminders taken back")]
        assert process.returncode == 0 and said == [], err
        summary = SUMMARY.fullmatch(out)
        assert summary, out
        totals = [total + int(n or 0) for total, n in zip(totals, summary.groups(), strict=True)]
    assert totals == [10, 10, 20]  # sent, withdrawn, to plan again: each by one process only
    check_invariants(shop, smtp, backlog)
    finish(shop, smtp, backlog)


def test_two_dispatchers_assessing_the_same_backlog_take_each_reminder_back_once(make_shop, store_url, smtp):
    """Both read the backlog before either writes: each reminder is dropped by one of them, its
    ledger rows changed once."""
    shop = new_shop(make_shop, store_url)
    backlog = make_backlog(shop, 12)
    both_assessed = threading.Barrier(2, timeout=WAIT)
    withdrawals = [Paused(shop, both_assessed.wait) for _ in range(2)]
    threads = Threads()
    for n, withdraw in enumerate(withdrawals):
        threads.start(
            f"dispatcher-{n}", lambda withdraw=withdraw, n=n: run_dispatch(shop, withdraw, worker=f"w{n}")
        )
    reports = threads.join()

    assessed = [w.assessed for w in withdrawals]
    assert assessed[0].withdrawn == assessed[1].withdrawn and len(assessed[0].withdrawn) == 3
    assert assessed[0].replanned == assessed[1].replanned and len(assessed[0].replanned) == 6
    withdrawn = [set(r.withdrawn) for r in reports.values()]
    replanned = [set(r.replanned) for r in reports.values()]
    assert not withdrawn[0] & withdrawn[1] and withdrawn[0] | withdrawn[1] == set(assessed[0].withdrawn)
    assert not replanned[0] & replanned[1] and replanned[0] | replanned[1] == set(assessed[0].replanned)
    check_invariants(shop, smtp, backlog)
    finish(shop, smtp, backlog)


def test_a_dispatcher_whose_backlog_another_one_withdrew_and_sent_meanwhile_changes_nothing(
    make_shop, store_url, smtp
):
    shop = new_shop(make_shop, store_url)
    backlog = make_backlog(shop, 8)
    other: list[DispatchReport] = []
    late = Paused(shop, lambda: other.append(run_dispatch(shop, stale_reminders(shop.config))))

    report = run_dispatch(shop, late)

    assert len(other[0].withdrawn) == 2 and len(other[0].replanned) == 4 and len(other[0].sent) == 2
    assert late.assessed.withdrawn and late.assessed.replanned  # what it read before the other wrote
    assert (report.withdrawn, report.replanned, report.sent) == ([], [], [])
    check_invariants(shop, smtp, backlog)
    finish(shop, smtp, backlog)


# --- 2. the planner running while reminders are taken back ------------------------------------


def plan(shop: Shop, now: datetime = MONDAY_OPENING) -> list[str]:
    """`arsync reminders plan` (in this process); the customers planned."""
    report = plan_reminders(shop.engine, shop.config, shop.company, now=now)
    return [p.customer_ref for p in report.planned]


def test_a_planner_running_before_the_withdrawal_commits_plans_nothing_of_it(make_shop, store_url, smtp):
    """The still-due pairs leave the ledger only with their message: a planner reading in
    between still finds them, and plans them once they are out."""
    shop = new_shop(make_shop, store_url)
    backlog = make_backlog(shop, 8)
    early: list[list[str]] = []
    withdraw = Paused(shop, lambda: early.append(plan(shop)))

    report = run_dispatch(shop, withdraw)

    assert early == [[]]
    assert len(report.withdrawn) == 2 and len(report.replanned) == 4
    assert sorted(plan(shop), key=int) == ["1", "3", "5", "7"]  # the replanned customers
    check_invariants(shop, smtp, backlog)
    finish(shop, smtp, backlog)


def test_a_late_withdrawal_leaves_the_reminder_planned_again_meanwhile_alone(make_shop, store_url, smtp):
    """Dispatcher A reads the backlog; meanwhile dispatcher B takes it back and the planner plans
    the still-due invoices again, in new messages whose ledger rows are the same (invoice,
    offset) pairs. A's stale verdict must neither drop the new messages nor touch those rows."""
    shop = new_shop(make_shop, store_url)
    backlog = make_backlog(shop, 8)
    replanned: list[list[str]] = []

    def meanwhile() -> None:
        taken = stale_reminders(shop.config)
        with shop.engine.begin() as connection:
            verdict = taken(connection, MONDAY_OPENING, ["acme"])
        assert len(verdict.withdrawn) == 2 and len(verdict.replanned) == 4
        replanned.append(plan(shop))

    late = Paused(shop, meanwhile)
    report = run_dispatch(shop, late, worker="late")

    assert sorted(replanned[0], key=int) == ["1", "3", "5", "7"]
    assert (report.withdrawn, report.replanned) == ([], [])
    assert len(report.sent) == 2 + 4  # the wholly due ones, and the new messages
    check_invariants(shop, smtp, backlog)
    finish(shop, smtp, backlog)


def test_planner_and_dispatchers_racing_at_the_opening_week_after_week(make_shop, store_url, smtp):
    """Week after week: reminders planned on Friday evening, some of their invoices paid over
    the weekend; at Monday's opening two dispatchers and the planner start together (real
    functions, in threads, unforced), so the planner re-plans what a withdrawal hands back
    before, while or after it commits."""
    shop = new_shop(make_shop, store_url)
    customers = [customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in range(1, 9)]
    shop.sync(customers, [])
    weeks = 8
    for week in range(weeks):
        friday, monday = (moment + timedelta(weeks=week) for moment in (FRIDAY_EVENING, MONDAY_OPENING))
        due_day = DUE + timedelta(weeks=week)
        invoices, paying, due = [], [], {}
        for n in range(1, 9):
            count, paid = SHAPES[(n + week) % 4]
            for k in range(count):
                record = invoice(f"c{n}i{week}{k}", str(n), due_day, "10.00")
                invoices.append(record)
                if k < paid:
                    paying.append(paid_invoice(record.ref, str(n), due=due_day))
                else:
                    due.setdefault(str(n), set()).add(record.ref)
        shop.sync_changes(invoices)
        assert shop.cli("reminders", "plan", "--now", iso(friday)).code == 0
        shop.sync_changes(paying)
        received = len(smtp.received)

        start = threading.Barrier(3, timeout=WAIT)
        threads = Threads()
        threads.start("planner", repeatedly(start, lambda monday=monday: plan(shop, monday)))
        for n in range(2):
            withdraw = stale_reminders(shop.config)
            work = lambda monday=monday, withdraw=withdraw: run_dispatch(shop, withdraw, now=monday)  # noqa: E731
            threads.start(f"dispatcher-{n}", repeatedly(start, work))
        threads.join()
        plan(shop, monday)
        run_dispatch(shop, stale_reminders(shop.config), now=monday)

        this_week = smtp.received[received:]
        by_customer = {}
        for r in this_week:
            [to] = r.rcpt_tos
            assert to not in by_customer, f"week {week}: {to} got two emails"
            by_customer[to] = set(listed(r.message))
        assert by_customer == {f"c{ref}@example.com": refs for ref, refs in due.items()}, f"week {week}"
        assert shop.scalar("SELECT COUNT(*) FROM outbox WHERE status NOT IN ('sent', 'dropped')") == 0
    counts = Counter(ref for r in smtp.received for ref in listed(r.message))
    assert [ref for ref, n in counts.items() if n > 1] == []
    ledger = dict(shop.rows("SELECT invoice_ref, status FROM reminder_ledger"))
    assert {ref for ref, status in ledger.items() if status == "sent"} == set(counts)


def test_planner_and_dispatchers_at_the_opening_send_a_held_reminder_once_with_what_fell_due(
    make_shop, store_url, smtp
):
    """Sunday's reminders (offset -1 of invoices due on Monday) wait for Monday's opening, when
    offset 0 is due too, and for some customers offset -1 of another invoice. The planner and
    two dispatchers start together, as a worker's jobs do: the dispatchers sent Sunday's
    reminders before the planner had planned Monday's, and every customer got two emails.
    Each gets one, listing the latest offset of each invoice."""
    shop = make_shop(
        store_url, timezone="America/New_York", delivery_days=WEEKDAYS, reminder_offsets_days=[-1, 0]
    )
    monday, tuesday = date(2026, 11, 23), date(2026, 11, 24)
    invoices = {str(n): [invoice(f"c{n}i0", str(n), monday, "10.00")] for n in range(1, 13)}
    for n in range(3, 13, 3):
        invoices[str(n)].append(invoice(f"c{n}i1", str(n), tuesday, "5.00"))  # due on Monday at -1
    shop.sync(
        [customer(ref, f"Customer {ref}", f"c{ref}@example.com") for ref in invoices],
        [record for records in invoices.values() for record in records],
    )
    assert shop.cli("reminders", "plan", "--now", iso(utc("2026-11-22T17:00"))).code == 0  # Sunday noon

    start = threading.Barrier(3, timeout=WAIT)
    threads = Threads()
    seconds = itertools.count(1)  # each planning at its own time, as the clock gives them
    threads.start(
        "planner",
        repeatedly(start, lambda: plan(shop, MONDAY_OPENING + timedelta(seconds=next(seconds)))),
    )
    for n in range(2):
        withdraw = stale_reminders(shop.config)
        threads.start(f"dispatcher-{n}", repeatedly(start, lambda w=withdraw: run_dispatch(shop, w)))
    threads.join()
    a_minute_later = MONDAY_OPENING + timedelta(minutes=1)
    plan(shop, a_minute_later)
    run_dispatch(shop, stale_reminders(shop.config), now=a_minute_later)

    by_customer = {}
    for r in smtp.received:
        [to] = r.rcpt_tos
        assert to not in by_customer, f"{to} got two emails"
        by_customer[to] = sorted(listed(r.message))
    assert by_customer == {
        f"c{ref}@example.com": [i.ref for i in records] for ref, records in invoices.items()
    }
    ledger = shop.rows("SELECT invoice_ref, offset_days, status FROM reminder_ledger")
    assert {(ref, offset): status for ref, offset, status in ledger} == {
        **{(f"c{n}i0", -1): "skipped" for n in range(1, 13)},
        **{(f"c{n}i0", 0): "sent" for n in range(1, 13)},
        **{(f"c{n}i1", -1): "sent" for n in range(3, 13, 3)},
    }


def test_two_dispatchers_reading_the_backlog_either_side_of_a_payment_do_not_deadlock(
    make_shop, pg_url, smtp, monkeypatch
):
    """Customer 1's reminder lists two invoices, one paid over the weekend; customer 2's lists
    one, paid. The first dispatcher reads 1's as partly stale and 2's as wholly stale; then the
    other invoice of 1 is paid, and the second dispatcher reads both as wholly stale. The first
    drops 2's reminder (its `withdrawn`), then 1's (its `replanned`); the second drops both in
    one statement, 1's row first: opposite lock orders on PostgreSQL, and one run failed with
    "deadlock detected". Both runs must end without error, each reminder taken back once (the
    first now locks every row it names in id order, skipping those another holds)."""
    shop = new_shop(make_shop, pg_url)
    shop.sync(
        [customer("1", "One", "c1@example.com"), customer("2", "Two", "c2@example.com")],
        [
            invoice("c1i0", "1", DUE, "10.00"),
            invoice("c1i1", "1", DUE, "10.00"),
            invoice("c2i0", "2", DUE, "10.00"),
        ],
    )
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).code == 0
    shop.sync_changes([paid_invoice("c1i0", "1"), paid_invoice("c2i0", "2")])
    [one, two] = [row[0] for row in shop.rows("SELECT id FROM outbox ORDER BY id")]
    threads = Threads()
    second_pid: list[int] = []
    second_read, first_wrote, second_done = threading.Event(), threading.Event(), threading.Event()

    def second_reads() -> None:  # and writes once the first holds 2's row
        second_read.set()
        assert first_wrote.wait(WAIT)

    class Second(Paused):
        def __call__(self, connection, now, companies):
            second_pid.append(connection.connection.dbapi_connection.info.backend_pid)
            return super().__call__(connection, now, companies)

    def first_reads() -> None:  # the first has read; a payment, then the second reads and writes
        shop.sync_changes([paid_invoice("c1i1", "1")])

        def second() -> DispatchReport:
            try:
                return run_dispatch(shop, Second(shop, second_reads), worker="second")
            finally:
                second_done.set()

        threads.start("second", second)
        assert second_read.wait(WAIT)

    real_drop = take_back_module._drop

    def drop(connection, ids, reason, *, tried):
        dropped = real_drop(connection, ids, reason, tried=tried)
        if threading.current_thread().name == "first" and ids == [two]:  # its first write: 2's row
            first_wrote.set()
            wait_until_blocked(shop, second_pid[0], second_done)  # the second holds 1's row, waits for 2's
        return dropped  # ... and the first turns to 1's: each waits for the other

    monkeypatch.setattr(take_back_module, "_drop", drop)
    first = Paused(shop, first_reads)
    threads.start("first", lambda: run_dispatch(shop, first, worker="first"))
    reports = threads.join()  # PostgreSQL breaks the cycle by failing one of them: re-raised here

    assert (first.assessed.withdrawn, first.assessed.replanned) == ([two], [one])
    assert sorted(reports) == ["first", "second"]
    taken = [i for report in reports.values() for i in (*report.withdrawn, *report.replanned)]
    assert sorted(taken) == [one, two]
    assert shop.rows("SELECT DISTINCT status FROM outbox") == [("dropped",)]
    # every pair out of the ledger, never sent: c1i1 went by the first's reading, due, to plan
    # again; it is paid now, so the planner has nothing to send; the paid ones are released
    assert shop.rows("SELECT invoice_ref, status FROM reminder_ledger ORDER BY invoice_ref") == []
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).code == 0
    assert shop.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'queued'") == 0


def wait_until_blocked(shop: Shop, pid: int, done: threading.Event) -> None:
    """Poll (bounded) until the PostgreSQL backend `pid` waits for a lock, or its work is `done`
    (a store that never makes it wait)."""
    deadline = time.monotonic() + 10
    query = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"
    while time.monotonic() < deadline:
        if done.is_set() or shop.scalar(query, pid=pid) == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} neither waited for a lock nor finished")


# --- 3. a replanned reminder carrying the customer's statement ---------------------------------

CREATED = re.compile(rb"/CreationDate \([^)]*\)|/ID \[[^]]*\]")  # the time it was printed


def statement_pdf(message) -> bytes:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    return CREATED.sub(b"", attachment.get_content())


def test_a_replanned_reminder_carries_the_statement_of_the_day_it_is_planned_again(
    make_shop, store_url, smtp
):
    """`attach_statement`: the reminder planned on Friday carries Friday's statement (both
    invoices open); over the weekend one is paid, so the reminder is planned again on Monday
    listing the other. Its statement must be Monday's: the payment in, the closing balance
    the one invoice still owed."""
    shop = new_shop(make_shop, store_url, attach_statement=True)
    shop.sync(
        [customer("1", "Café Müller", "ap@cafe.example")],
        [invoice("c1i0", "1", DUE, "120.00"), invoice("c1i1", "1", DUE, "80.00")],
    )
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING)).code == 0
    [friday_payload] = [row[0] for row in shop.rows("SELECT payload FROM outbox")]
    shop.sync_changes([paid_invoice("c1i1", "1", "80.00")])
    with shop.engine.begin() as connection:
        write_payments(
            connection,
            "acme",
            [payment("P1", "1", "80", pay("payment", "P1", "c1i1", "80"))],
            now=MONDAY_OPENING,
        )

    withdrawn = shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING))
    assert withdrawn.out.endswith("1 to plan again without invoices no longer due\n"), withdrawn.err
    assert shop.cli("reminders", "plan", "--now", iso(MONDAY_OPENING)).code == 0
    assert shop.cli("mail", "dispatch", "--now", iso(MONDAY_OPENING)).out.startswith("mail: 1 sent")

    [received] = smtp.received
    assert listed(received.message) == ["c1i0"]
    monday = company_today(MONDAY_OPENING, shop.company.timezone)
    document = load_document(shop.engine, "acme", shop.company.name, "1", day=monday)
    assert document.statement.closing_balance == Decimal("120.00")  # what the store says today
    assert [line.kind for line in document.statement.lines] == ["invoice", "invoice", "payment"]
    attached = statement_pdf(received.message)
    assert attached == CREATED.sub(b"", render_pdf(document))  # Monday's statement, as printed today
    assert attached != statement_pdf(parse(friday_payload))  # not the one planned on Friday
