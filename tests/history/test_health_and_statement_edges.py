"""SPEC sections 9 and 10 from outside, cases an audit found: hand-built books served by the QuickBooks
simulator, synced with `arsync sync`, read back through `arsync customer health` and
`arsync statement`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.simulators.ledger import SimAllocation, SimPayment
from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice
from connectors.simulators.quickbooks import QuickBooksSimulator
from sync.cli import main

D = Decimal
TODAY = datetime.now(UTC).date()


def _at(days_ago: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)


@dataclass
class Books:
    config: Path
    sim: QuickBooksSimulator
    company: SimCompany
    capsys: pytest.CaptureFixture

    def cli(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def sync(self, *args: str) -> dict:
        code, out, err = self.cli("sync", "--json", *args)
        assert code == 0, (out, err)
        [summary] = [json.loads(line) for line in out.splitlines()]
        assert summary["status"] == "ok", summary
        return summary

    def health(self) -> dict[str, dict]:
        code, out, err = self.cli("customer", "health", "co", "--json")
        assert code == 0, err
        return {row["customer_ref"]: row for row in map(json.loads, out.splitlines())}


def quickbooks(customers: list[SimCustomer], invoices: list[SimInvoice], payments=()) -> SimCompany:
    company = SimCompany(id="9130000000000077", name="Audit Books", kind="quickbooks")
    company.customers = {c.id: c for c in customers}
    company.invoices = {i.id: i for i in invoices}
    company.payments = {p.id: p for p in payments}
    return company


@pytest.fixture
def open_books(store_url: str, tmp_path: Path, capsys, monkeypatch) -> Iterator:
    """Serve a QuickBooks company and point a migrated, connected arsync store at it."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    opened: list[QuickBooksSimulator] = []

    def start(company: SimCompany, timezone: str = "UTC") -> Books:
        sim = QuickBooksSimulator(company)
        sim.__enter__()
        opened.append(sim)
        monkeypatch.setenv("AUDIT_QBO_SECRET", sim.tokens.client_secret)
        config = tmp_path / "arsync.toml"
        config.write_text(
            f'[store]\nurl = "{store_url}"\n[log]\nlevel = "warning"\n'
            f'[[companies]]\nid = "co"\nname = "Audit Co"\ntimezone = "{timezone}"\n'
            'portal_url = "https://portal.audit.example"\n'
            f'[companies.connection]\nkind = "quickbooks"\nrealm_id = "{company.id}"\n'
            f'client_id = "{sim.tokens.client_id}"\nclient_secret_env = "AUDIT_QBO_SECRET"\n'
            f'api_base_url = "{sim.api_url}"\ntoken_url = "{sim.token_url}"\n'
        )
        books = Books(config, sim, company, capsys)
        assert books.cli("db", "upgrade")[0] == 0
        pair = sim.tokens.issue()
        code, _, err = books.cli(
            "auth", "set-tokens", "co", "--access-token", pair.access_token,
            "--refresh-token", pair.refresh_token, "--expires-in", "1800",
        )  # fmt: skip
        assert code == 0, err
        return books

    yield start
    for sim in opened:
        sim.__exit__(None, None, None)


def test_health_follows_an_invoice_marked_sent_at_the_next_sync(open_books):
    """SPEC 10: the score is "computed at the end of each sync from the customer's visible
    invoices". After `arsync invoice mark-sent` the invoice is visible (portal_invoices shows
    it, 20 days past due), yet every later incremental sync leaves the customer's health at
    "no visible invoice": only customers the sync wrote rows for are recomputed."""
    due = TODAY - timedelta(days=20)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [SimInvoice("101", "1001", "1", due - timedelta(days=10), due, "USD", D("100.00"), D("100.00"),
                        _at(4))],
        )
    )  # fmt: skip
    books.sync()
    assert books.health()["1"]["band"] == "unknown"  # the only invoice was never sent

    code, out, err = books.cli("invoice", "mark-sent", "co", "101")
    assert code == 0 and "visible in the portal" in out, err
    books.sync()
    row = books.health()["1"]
    assert row["score"] is not None and row["band"] != "unknown", row
    assert "1 open invoice 20 days past due" in row["reasons"], row

    assert books.cli("invoice", "mark-unsent", "co", "101")[0] == 0
    books.sync()
    assert books.health()["1"]["band"] == "unknown"  # hidden again: it no longer counts


def test_mark_sent_at_another_now_scores_the_customer_on_that_day(open_books):
    """SPEC 6: every command that depends on the current time accepts `--now`. Marking an
    invoice sent rescores its customer, whose days past due depend on the day: with `--now`
    ten days on, the score counts them as of then, as a sync at that `--now` does."""
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [SimInvoice("101", "1001", "1", TODAY - timedelta(days=30), TODAY, "USD", D("50.00"), D("50.00"),
                        _at(4))],
        )
    )  # fmt: skip
    books.sync()
    later = datetime.now(UTC) + timedelta(days=10)
    code, out, err = books.cli("invoice", "mark-sent", "co", "101", "--now", later.isoformat())
    assert code == 0, err
    row = books.health()["1"]
    assert "1 open invoice 10 days past due" in row["reasons"], row
    assert datetime.fromisoformat(row["computed_at"]) >= later - timedelta(minutes=5), row

    code, out, err = books.cli("invoice", "mark-unsent", "co", "101", "--now", later.isoformat())
    assert code == 0, err
    assert books.health()["1"]["band"] == "unknown"


def test_a_sync_on_a_later_day_counts_the_days_past_due_so_far(open_books):
    """SPEC 10: computed at the end of each sync; "open invoices count with the days they are
    past due so far". A sync ten days later that brings no change from the books leaves the
    score and reasons of the day the invoice fell due ("1 open invoice due today", 100)."""
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [SimInvoice("101", "1001", "1", TODAY - timedelta(days=30), TODAY, "USD", D("50.00"), D("50.00"),
                        _at(4), email_sent=True)],
        )
    )  # fmt: skip
    books.sync("--now", datetime.now(UTC).isoformat())
    assert books.health()["1"]["reasons"] == "1 open invoice due today"

    later = datetime.now(UTC) + timedelta(days=10)
    books.sync("--now", later.isoformat())
    row = books.health()["1"]
    assert "1 open invoice 10 days past due" in row["reasons"], row
    assert row["score"] < 90, row
    assert datetime.fromisoformat(row["computed_at"]) >= later - timedelta(minutes=5), row


def _printed_end(header: str) -> date | None:
    found = re.search(r"to (\d{4}-\d{2}-\d{2})$", header.strip())
    return date.fromisoformat(found.group(1)) if found else None


def test_statement_lines_lie_within_the_period_it_prints(open_books):
    """`arsync statement co 1 --from D` prints "from D to TODAY" (and refuses a --from after
    today "where the statement ends"), yet lists and sums a line dated after that day."""
    issued = TODAY - timedelta(days=20)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [
                SimInvoice("101", "1001", "1", issued, issued + timedelta(days=30), "USD", D("100.00"),
                           D("100.00"), _at(4), email_sent=True),
                SimInvoice("102", "1002", "1", TODAY + timedelta(days=5), TODAY + timedelta(days=35), "USD",
                           D("40.00"), D("40.00"), _at(4), email_sent=True),  # dated ahead
            ],
        )
    )  # fmt: skip
    books.sync()
    for args in (["--from", (TODAY - timedelta(days=30)).isoformat()], []):
        code, out, err = books.cli("statement", "co", "1", *args)
        assert code == 0, err
        header, *rows = out.splitlines()
        end = _printed_end(header)
        dated = [date.fromisoformat(row[:10]) for row in rows if re.match(r"\d{4}-\d{2}-\d{2} ", row)]
        assert end is None or all(day <= end for day in dated), (header, dated)


def test_printed_statement_amounts_add_up_to_the_printed_balances(open_books):
    """The store keeps four places and the portal API shows them ("100.125"); the text
    statement rounds every amount and running balance to cents on its own (half-even), so the
    printed lines no longer add up to the printed balances (100.12 + 10.12 -> 110.25)."""
    day = TODAY - timedelta(days=10)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [
                SimInvoice("101", "1001", "1", day, day, "USD", D("100.125"), D("66.7917"), _at(4),
                           email_sent=True),
                SimInvoice("102", "1002", "1", day, day, "USD", D("10.1234"), D("10.1234"), _at(4),
                           email_sent=True),
            ],
            [SimPayment("201", "1", day, "USD", D("33.3333"), _at(4),
                        [SimAllocation("101", D("33.3333"), day)], reference="R")],
        )
    )  # fmt: skip
    books.sync()
    code, out, err = books.cli("statement", "co", "1")
    assert code == 0, err
    running = Decimal(0)
    for row in out.splitlines():
        if not re.match(r"\d{4}-\d{2}-\d{2} ", row):
            continue
        amount, balance = (Decimal(x.replace(",", "")) for x in row.split()[-2:])
        running += amount
        assert running == balance, (row, running)
    closing = next(r for r in out.splitlines() if "closing balance" in r).split()[-1]
    assert Decimal(closing.replace(",", "")) == running == Decimal("76.9151"), out


def _recomputed(books: Books, store_url: str) -> dict[str, tuple]:
    """Every customer's health as a recomputation of the whole company gives it now."""
    from store.db import make_engine
    from store.health import recompute

    engine = make_engine(store_url)
    try:
        recompute(engine, "co", datetime.now(UTC))
    finally:
        engine.dispose()
    return {ref: (row["score"], row["band"], row["reasons"]) for ref, row in books.health().items()}


@pytest.mark.parametrize("change", ["deleted", "moved"])
def test_health_follows_an_invoice_deleted_or_moved_to_another_customer(open_books, store_url, change):
    """QuickBooks' CDC reports a deleted invoice as {Id, status: Deleted}, naming no customer, and
    a moved invoice names only its new one: the customer it was counted for is rescored too."""
    past = TODAY - timedelta(days=70)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5)),
             SimCustomer("2", "Beta", True, ["b@beta.example"], _at(5))],
            [SimInvoice("101", "1001", "1", past - timedelta(days=30), past, "USD", D("500.00"), D("500.00"),
                        _at(4), email_sent=True),
             SimInvoice("102", "1002", "2", TODAY - timedelta(days=5), TODAY, "USD", D("100.00"), D("100.00"),
                        _at(4), email_sent=True)],
        )
    )  # fmt: skip
    books.sync("--full")
    assert "1 open invoice 70 days past due" in books.health()["1"]["reasons"]

    invoice = books.company.invoices["101"]
    if change == "deleted":
        invoice.status = "deleted"
    else:
        invoice.customer_id = "2"
    invoice.updated_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    books.company.revision += 1
    books.sync()
    after = {ref: (row["score"], row["band"], row["reasons"]) for ref, row in books.health().items()}
    assert after["1"][1] == "unknown", after  # no visible invoice left in its year
    assert after == _recomputed(books, store_url)


def test_an_override_for_a_customer_out_of_the_portal_says_so_and_shows_once_it_is_back(open_books):
    """`customer set-health` on a customer made inactive in the books: set and kept, but no
    score shows for it; the command says so instead of only "health 35 (override)"."""
    past = TODAY - timedelta(days=10)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [SimInvoice("101", "1001", "1", past, past, "USD", D("10.00"), D("10.00"), _at(4),
                        email_sent=True)],
        )
    )  # fmt: skip
    books.sync()
    alpha = books.company.customers["1"]

    def edit(active: bool) -> None:
        alpha.active = active
        alpha.updated_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        books.company.revision += 1
        books.sync()

    edit(active=False)
    code, out, err = books.cli("customer", "set-health", "co", "1", "35", "--note", "watch list")
    assert code == 0 and "health 35 (override)" in out, err
    assert "not in the portal now" in err, err
    assert "1" not in books.health()
    edit(active=True)
    row = books.health()["1"]
    assert (row["score"], row["source"]) == (35, "override"), row
    code, out, err = books.cli("customer", "set-health", "co", "1", "40")
    assert code == 0 and err == "", err  # in the portal: nothing more to say


def test_deletions_unseen_after_a_gap_are_said_and_settled_by_the_next_sync(open_books):
    """A QuickBooks sync more than 30 days after the last one reads changes by LastUpdatedTime
    (SPEC §3), which shows no deletion: an invoice deleted meanwhile stays in the portal.
    `arsync status` says so; the next sync (a worker's or a manual one) pulls everything by
    itself and the invoice leaves the portal, with no one running `--full`."""
    past = TODAY - timedelta(days=10)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [SimInvoice(ref, f"1{ref}", "1", past, past, "USD", D(10), D(10), _at(4), email_sent=True)
             for ref in ("101", "102")],
        )
    )  # fmt: skip
    books.sync("--full")
    books.company.invoices["102"].status = "deleted"
    books.company.invoices["102"].updated_at = datetime.now(UTC).replace(microsecond=0)
    books.company.revision += 1
    later = (datetime.now(UTC) + timedelta(days=31)).isoformat()

    def status() -> tuple[dict, str]:
        code, out, err = books.cli("status", "--json")
        assert code == 0, err
        [row] = json.loads(out)
        return row, books.cli("status")[1]

    def invoices() -> list[str]:  # the doc numbers the portal shows
        code, out, err = books.cli("customer", "invoices", "co", "1")
        assert code == 0, err
        return sorted(line.split()[0] for line in out.splitlines() if " issued " in line)

    assert books.sync("--now", later)["full"] is False
    row, text = status()
    assert row["deletions_unseen_since"] is not None, row
    assert "DELETIONS:" in text and "until the next sync" in text and "`arsync sync --full co`" in text, text
    assert invoices() == ["1101", "1102"]  # what LastUpdatedTime cannot show

    assert books.sync("--now", later)["full"] is True  # asked as an incremental sync
    row, text = status()
    assert row["deletions_unseen_since"] is None and "DELETIONS:" not in text
    assert invoices() == ["1101"]
    assert books.sync("--now", later)["full"] is False  # settled: incremental again


def test_a_sync_at_another_now_leaves_the_workers_schedule_in_real_time(open_books):
    """`arsync sync --now` (a replay, a test) dates its run at that time, but the schedule is
    the workers': a run dated a month ahead once moved the company's next sync a month ahead,
    and no worker synced it until then."""
    past = TODAY - timedelta(days=10)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [SimInvoice("101", "1101", "1", past, past, "USD", D(10), D(10), _at(4), email_sent=True)],
        )
    )
    later = datetime.now(UTC) + timedelta(days=31)
    before = datetime.now(UTC)
    books.sync("--now", later.isoformat())
    code, out, err = books.cli("status", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    next_sync = datetime.fromisoformat(row["next_sync"])
    # an interval (15 minutes) after the run's real start, not after 31 days
    assert before < next_sync < datetime.now(UTC) + timedelta(minutes=16), row
    assert row["last_sync"].startswith(later.date().isoformat())  # the run itself is dated --now


def test_mark_sent_takes_the_invoice_number_the_admin_knows(open_books):
    """SPEC 6: `arsync invoice mark-sent COMPANY INVOICE_REF`. QuickBooks' Id is not the
    number on the invoice (id 101 is invoice 1001), and an admin has only the number. The
    number names the invoice when no id matches; a number two invoices share names neither
    (exit 2, both ids named), and an id still wins over a number that looks like it."""
    due = TODAY + timedelta(days=10)
    books = open_books(
        quickbooks(
            [SimCustomer("1", "Alpha", True, ["a@alpha.example"], _at(5))],
            [SimInvoice("101", "1001", "1", TODAY, due, "USD", D("100.00"), D("100.00"), _at(4)),
             SimInvoice("102", "2002", "1", TODAY, due, "USD", D("20.00"), D("20.00"), _at(4)),
             SimInvoice("103", "2002", "1", TODAY, due, "USD", D("30.00"), D("30.00"), _at(4)),
             SimInvoice("104", "101", "1", TODAY, due, "USD", D("40.00"), D("40.00"), _at(4))],
        )
    )  # fmt: skip
    books.sync()

    code, out, err = books.cli("invoice", "mark-sent", "co", "1001")
    assert code == 0, err
    assert "co invoice 101 (number 1001): marked sent; visible in the portal" in out
    code, out, err = books.cli("customer", "invoices", "co", "1")
    assert code == 0 and "1001" in out and "2002" not in out, (out, err)

    code, out, err = books.cli("invoice", "mark-sent", "co", "2002")
    assert code == 2 and "Traceback" not in err
    assert "invoice number '2002' is on several invoices (ids 102, 103): give the id" in err

    code, out, err = books.cli("invoice", "mark-unsent", "co", "101")  # id 101, not number 101
    assert code == 0 and "co invoice 101 (number 1001): marked unsent" in out, (out, err)
    code, out, err = books.cli("customer", "invoices", "co", "1")
    assert code == 0 and "1001" not in out, out
