"""A statement for a past period ages on its last day, over the balances its own lines give
then, so the aging adds up to the closing balance printed above it; a statement to today or
later ages today, as before. Through `arsync statement --json`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest

from store import portal
from store.db import make_engine, upgrade
from sync.cli import main
from tests.history import books
from tests.history.books import D, credit, invoice, pay, payment

NOW, TODAY = "2026-12-10T12:00:00", date(2026, 12, 10)


@pytest.fixture
def statement(store_url, tmp_path, capsys):
    """Books of customer C1 with settlements before and after November 30 (balances consistent
    with them today), and a function printing C1's statement as JSON at NOW."""
    engine = make_engine(store_url)
    upgrade(engine)
    books.company(engine, "acme")
    books.customers(engine, "acme", ["C1"])
    books.invoices(engine, "acme", [
        invoice("I1", "C1", "100", "0", issued=date(2026, 10, 1), due=date(2026, 10, 31)),  # paid Dec 3
        invoice("I2", "C1", "50", issued=date(2026, 12, 2), due=date(2026, 12, 5)),  # issued after Nov 30
        invoice("I3", "C1", "80", "20", issued=date(2026, 8, 1), due=date(2026, 9, 1)),  # settled in parts
        invoice("I4", "C1", "25", "20", issued=None, due=None),  # undated: before every day, always current
    ])  # fmt: skip
    books.payments(engine, "acme", [
        payment("P1", "C1", "100", pay("payment", "P1", "I1", "100"), on=date(2026, 12, 3)),
        payment("P2", "C1", "30", pay("payment", "P2", "I3", "30"), on=date(2026, 10, 15)),
        payment("P3", "C1", "5", pay("payment", "P3", "I4", "5"), on=None),  # undated: before every day
        # a QuickBooks write-off: a journal entry's credit applied by a payment of no money
        payment("P4", "C1", "0", pay("journal", "JE1", "I3", "10", date(2026, 12, 5)),
                on=date(2026, 12, 5), credit_only=True),
    ])  # fmt: skip
    # a credit note dated in November, allocated in December: its line is dated November 5
    allocated = pay("credit", "CN1", "I3", "20", date(2026, 12, 4))
    books.credits(engine, "acme", [credit("CN1", "C1", "20", "0", allocated, on=date(2026, 11, 5))])
    today_aging = portal.aging(engine, "acme", "C1", TODAY)
    engine.dispose()
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\ntimezone = "UTC"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )

    def run(*args: str, as_json: bool = True) -> dict | str:
        capsys.readouterr()
        flags = ["--json"] if as_json else []
        code = main(["--config", str(config), "statement", "acme", "C1", *args, *flags, "--now", NOW])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out) if as_json else out

    run.today_aging = today_aging
    return run


def _aging_total(data: dict) -> D:
    return sum((D(amount) for amount in data["aging"].values()), D(0))


def test_a_past_statement_ages_on_its_end_over_the_balances_its_lines_give(statement):
    data = statement("--from", "2026-11-01", "--to", "2026-11-30")
    assert [line["ref"] for line in data["lines"]] == ["CN1"]
    assert (data["opening_balance"], data["closing_balance"]) == ("170.00", "150.00")
    assert data["aging_on"] == "2026-11-30"
    # I1 not yet paid (30 days late), I2 not yet issued, I3 less P2 and CN1 (90 days late),
    # I4 less the undated P3 (no due date); JE1 (December 5) not yet applied
    assert data["aging"] == {
        "current": "20.00", "1_30": "100.00", "31_60": "0.00", "61_90": "30.00", "over_90": "0.00"
    }  # fmt: skip
    assert _aging_total(data) == D(data["closing_balance"])


@pytest.mark.parametrize("end", ["2026-10-14", "2026-10-15", "2026-11-04", "2026-11-30", "2026-12-03"])
def test_the_aging_of_a_past_statement_adds_up_to_its_closing_balance(statement, end):
    data = statement("--to", end)
    assert data["aging_on"] == end
    assert _aging_total(data) == D(data["closing_balance"])


@pytest.mark.parametrize("args", [[], ["--to", "2026-12-10"], ["--to", "2026-12-31"]],
                         ids=["no-end", "ends-today", "ends-ahead"])  # fmt: skip
def test_a_statement_to_today_or_later_ages_today_over_todays_balances(statement, args):
    data = statement(*args)
    assert data["aging_on"] == "2026-12-10"
    as_before = statement.today_aging.buckets()  # `portal.aging` on today, untouched by the fix
    assert data["aging"] == {name: f"{amount:.2f}" for name, amount in as_before.items()}
    assert data["aging"] == {
        "current": "20.00", "1_30": "50.00", "31_60": "0.00", "61_90": "0.00", "over_90": "20.00"
    }  # fmt: skip
    assert _aging_total(data) == D(data["closing_balance"]) == D(90)


def test_the_text_statement_names_the_day_its_aging_is_on(statement):
    out = statement("--to", "2026-11-30", as_json=False)
    assert "aging on 2026-11-30: Current 20.00, 1–30 days 100.00" in out
