"""A record the books give in a form arsync cannot read, end to end through the QuickBooks
simulator and the CLI: `status` and `history` say so, the invoice's reminders are held while
its stored row is older than the books, and a sync that reads it again lifts both."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from connectors.simulators import mutations
from connectors.simulators.mutations import _touch
from sync.config import load_config
from sync.http.app import create_app
from tests.http.conftest import serving_in_thread

QUARANTINE_LINE = "QUARANTINED: 1 record(s) in the books could not be read (invoices 1)"
REASON = "CurrencyRef is not a currency code: '840'"


def _outstanding(world) -> float:
    """qbo's `arsync_quarantine_outstanding` as a real server's `/metrics` says it."""
    with serving_in_thread(create_app(config=load_config(world.config))) as base:
        answer = httpx.get(f"{base}/metrics")
    assert answer.status_code == 200
    [value] = [
        sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == "arsync_quarantine_outstanding" and sample.labels == {"company": "qbo"}
    ]
    return value


def _since(world) -> str:
    [qbo] = [row for row in json.loads(world.cli("status", "--json")[1]) if row["company"] == "qbo"]
    [record] = qbo["quarantined"]["records"]
    assert record["known_as"] == "1001"
    return record["since"]


def _planned(world) -> list[str]:
    """The invoices `reminders plan --dry-run` would remind qbo's customers of now."""
    code, out, err = world.cli("reminders", "plan", "qbo", "--dry-run")
    assert code == 0, err
    return sorted(ref for ref in ("INV-1001", "1001") if ref in out)


def test_an_unreadable_invoice_is_shown_and_its_reminders_held_until_it_reads(world):
    world.sync("qbo")
    assert _planned(world) == ["1001"]  # invoice 101, ten days past due
    code, out, _ = world.cli("status")
    assert code == 0 and "QUARANTINED" not in out

    invoice = world.qbo_books.invoices["101"]
    invoice.currency = "840"  # a CurrencyRef that is no ISO code: the rules cannot read it
    _touch(world.qbo_books, invoice, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1))
    assert world.sync("qbo")["qbo"]["quarantined"] == 1

    code, out, _ = world.cli("status")
    block = out.split("qbo_single (")[0]  # qbo's own lines (the three companies read these books)
    assert QUARANTINE_LINE in block, out
    [listed] = [line for line in block.splitlines() if line.startswith("    invoices 101 (1001) since ")]
    assert REASON in listed  # the API's id, and the number the invoice is known by
    code, out, _ = world.cli("status", "--json")
    [qbo] = [row for row in json.loads(out) if row["company"] == "qbo"]
    assert qbo["quarantined"]["count"] == 1 and qbo["quarantined"]["by_entity"] == {"invoices": 1}
    assert [(r["entity"], r["ref"]) for r in qbo["quarantined"]["records"]] == [("invoices", "101")]
    code, out, _ = world.cli("history", "qbo", "--limit", "1")
    assert " quarantined=1 " in out
    assert _outstanding(world) == 1
    # its stored row is as last read, and no reminder asks for that balance meanwhile
    assert world.rows("SELECT currency FROM invoices WHERE company_id = 'qbo' AND ref = '101'") == [("USD",)]
    assert _planned(world) == []
    out = world.cli("reminders", "plan", "qbo", "--dry-run")[1]
    assert "  held: the reminders of 1 invoice(s) whose latest version in the books could not be read" in out

    first_seen = _since(world)
    world.sync("qbo", "--full")  # read again, quarantined again: still one record, unreadable since
    assert _planned(world) == []
    assert QUARANTINE_LINE in world.cli("status")[1].split("qbo_single (")[0]
    assert _outstanding(world) == 1
    assert _since(world) == first_seen

    invoice.currency = "USD"  # mended in the books
    _touch(world.qbo_books, invoice, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2))
    assert world.sync("qbo")["qbo"]["quarantined"] == 0
    assert "QUARANTINED" not in world.cli("status")[1].split("qbo_single (")[0]
    assert _planned(world) == ["1001"]
    assert "held:" not in world.cli("reminders", "plan", "qbo", "--dry-run")[1]
    assert json.loads(world.cli("status", "--json")[1])[0]["quarantined"] is None
    assert _outstanding(world) == 0


def test_a_full_sync_resolves_what_the_books_no_longer_hold(world):
    world.sync("qbo")
    invoice = world.qbo_books.invoices["101"]
    invoice.currency = "840"
    _touch(world.qbo_books, invoice, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1))
    assert world.sync("qbo")["qbo"]["quarantined"] == 1
    mutations.delete(world.qbo_books, "101", datetime.now(UTC) + timedelta(seconds=2))  # then deleted

    full = world.sync("qbo", "--full")["qbo"]
    assert full["quarantined"] == 0, world.rows("SELECT run_id, entity, ref, reason FROM quarantine")
    assert "QUARANTINED" not in world.cli("status")[1].split("qbo_single (")[0]
    assert world.rows("SELECT deleted FROM invoices WHERE company_id = 'qbo' AND ref = '101'")[0][0] in (
        1,
        True,
    )
