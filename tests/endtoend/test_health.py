"""Customer health end to end (SPEC section 10): `arsync sync` computes it, the CLI shows and
overrides it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from connectors.simulators.ledger_mutations import receive_payment
from sync.app import App
from sync.config import load_config
from sync.jobs import JobContext, health

VIEW = "SELECT customer_ref, score, band, source, reasons FROM customer_health WHERE company_id = :c"


def health_rows(world, *args: str) -> list[dict]:
    code, out, err = world.cli("customer", "health", "qbo", *args, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_sync_computes_health_an_override_survives_syncs_and_bad_input_is_exit_2(world):
    world.sync("qbo")
    rows = health_rows(world)
    # customer 1: invoice 101 (100.00) ~10 days past due, 104 (80.00) paid without payment data;
    # 3 and 5 have invoices not yet due, 4 none; inactive 2 is not in the portal.
    assert [(r["customer_ref"], r["score"], r["band"], r["source"]) for r in rows] == [
        ("1", 83, "good", "computed"),
        ("3", None, "unknown", "computed"),
        ("4", None, "unknown", "computed"),
        ("5", None, "unknown", "computed"),
    ]
    assert rows[0]["reasons"].startswith("paid 1 of 2 invoices on time; 1 open invoice ")
    assert "1 paid invoice without a payment date counted as on time" in rows[0]["reasons"]
    assert rows[1]["reasons"] == "no visible invoice due in the last 365 days"

    code, out, _ = world.cli("customer", "health", "qbo")
    header, first, *_ = out.splitlines()
    assert header.split()[:5] == ["SCORE", "BAND", "SOURCE", "CUSTOMER", "NAME"]
    assert first.split()[:4] == ["83", "good", "computed", "1"] and "Café Müller" in first

    code, out, err = world.cli("customer", "set-health", "qbo", "3", "25", "--note", "disputes every invoice")
    assert code == 0, err
    # Customer 1 pays invoice 101 six days after its due date: the next sync brings the payment.
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    paid_on = world.qbo_books.invoices["101"].due_date + timedelta(days=6)
    receive_payment(world.qbo_books, "1", {"101": Decimal("100.00")}, at, paid_on=paid_on)
    world.sync("qbo")  # a later sync recomputes, and the override still wins
    rows = health_rows(world)
    assert (rows[1]["customer_ref"], rows[1]["score"]) == ("1", 85)  # 100 - (600/180 + 20 x 100/180)
    assert rows[1]["reasons"].startswith("paid 1 of 2 invoices on time; 1 paid 6 days late; ")
    assert (rows[0]["customer_ref"], rows[0]["score"], rows[0]["band"], rows[0]["source"]) == (
        "3",
        25,
        "poor",
        "override",
    )
    assert ": disputes every invoice (computed unknown: no visible invoice" in rows[0]["reasons"]
    assert [r["customer_ref"] for r in health_rows(world, "3")] == ["3"]
    assert world.rows(VIEW + " AND customer_ref = '3'", c="qbo")[0][:4] == ("3", 25, "poor", "override")

    assert world.cli("customer", "clear-health", "qbo", "3")[0] == 0
    assert health_rows(world, "3")[0]["source"] == "computed"
    assert "had no override" in world.cli("customer", "clear-health", "qbo", "3")[1]

    for args, named in [
        (("set-health", "qbo", "1", "101"), "101"),
        (("set-health", "qbo", "1", "-1"), "-1 is not in the range 0<=x<=100"),  # not "No such option"
        (("set-health", "qbo", "1", "ten"), "ten"),
        (("set-health", "qbo", "nosuch", "50"), "nosuch"),
        (("clear-health", "qbo", "nosuch"), "nosuch"),
        (("health", "qbo", "nosuch"), "nosuch"),
        (("health", "nosuchco"), "nosuchco"),
    ]:
        code, _, err = world.cli("customer", *args)
        assert code == 2, (args, err)
        assert named in err and "Traceback" not in err, (args, err)
    assert [r["source"] for r in health_rows(world)] == ["computed"] * 4


def test_days_past_due_advance_without_a_sync(world):
    """The daemon's hourly job recomputes every company: 60 days later, with no sync between."""
    world.sync("qbo")
    app = App.open(load_config(world.config))
    try:
        # Noon, company time (New York), 60 days after the books' "today" (a UTC date): the
        # company's date is then the same whatever hour of the UTC day the test runs at.
        later = datetime.combine(
            datetime.now(UTC).date() + timedelta(days=60), time(12), tzinfo=ZoneInfo("America/New_York")
        )
        health(JobContext(app, app.config, lambda: later, lambda: False, "test"))
    finally:
        app.close()
    rows = {r["customer_ref"]: r for r in health_rows(world)}
    assert (rows["1"]["score"], rows["1"]["band"]) == (46, "fair")  # was 83 on the day of the sync
    assert "3 open invoices 40 to 70 days past due" in rows["1"]["reasons"]
    assert rows["3"]["score"] is not None and rows["4"]["score"] is None
