"""A Xero contact billed in several currencies gets its statement's balances and aging per
currency, not sums of dollars and euros; a customer in one currency gets the statement as
before. Through `arsync statement` and the portal API, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from datetime import date

import httpx
import pytest

from store.db import make_engine, upgrade
from sync.cli import main
from sync.config import load_config
from sync.http.app import create_app
from tests.history import books
from tests.history.books import credit, invoice, pay, payment
from tests.http.conftest import serving_in_thread

NOW = "2026-12-01T12:00:00"
AGING = ("current", "1_30", "31_60", "61_90", "over_90")


def _aging(bucket: str, amount: str) -> dict[str, str]:
    """The aging JSON with `amount` in `bucket` and nothing in the others."""
    return {name: amount if name == bucket else "0.00" for name in AGING}


@pytest.fixture
def config(store_url, tmp_path):
    """Customer X1 billed in dollars and euros; customer U1 in dollars only."""
    engine = make_engine(store_url)
    upgrade(engine)
    books.company(engine, "acme")
    books.customers(engine, "acme", ["X1", "U1"])
    books.invoices(engine, "acme", [
        invoice("I1", "X1", "100", "40", issued=date(2026, 10, 1), due=date(2026, 10, 31)),
        replace(invoice("I2", "X1", "200", "150", issued=date(2026, 10, 5), due=date(2026, 11, 4)),
                currency="EUR"),
        invoice("I3", "U1", "70", "70", issued=date(2026, 10, 1), due=date(2026, 10, 31)),
    ])  # fmt: skip
    books.payments(engine, "acme", [
        payment("P1", "X1", "60", pay("payment", "P1", "I1", "60"), on=date(2026, 10, 15)),
    ])  # fmt: skip
    euros = credit("CN1", "X1", "50", "0", pay("credit", "CN1", "I2", "50"), on=date(2026, 10, 20))
    books.credits(engine, "acme", [replace(euros, currency="EUR")])
    engine.dispose()
    path = tmp_path / "arsync.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\ntimezone = "UTC"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )
    return path


def statement(config, capsys, customer: str, *args: str) -> str:
    capsys.readouterr()
    code = main(["--config", str(config), "statement", "acme", customer, *args, "--now", NOW])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_json_gives_balances_and_aging_per_currency_and_no_sums_across_them(config, capsys):
    data = json.loads(statement(config, capsys, "X1", "--json"))
    assert (data["opening_balance"], data["closing_balance"], data["aging"]) == (None, None, None)
    # each line in its currency, its running balance in that currency alone
    assert [(x["ref"], x["currency"], x["amount"], x["running_balance"]) for x in data["lines"]] == [
        ("I1", "USD", "100.00", "100.00"),
        ("I2", "EUR", "200.00", "200.00"),
        ("P1", "USD", "-60.00", "40.00"),
        ("CN1", "EUR", "-50.00", "150.00"),
    ]
    assert data["balances_by_currency"] == [
        {"currency": "EUR", "opening_balance": "0.00", "closing_balance": "150.00",
         "aging": _aging("1_30", "150.00")},
        {"currency": "USD", "opening_balance": "0.00", "closing_balance": "40.00",
         "aging": _aging("31_60", "40.00")},
    ]  # fmt: skip


def test_a_period_opens_and_closes_per_currency_and_a_past_one_ages_on_its_end(config, capsys):
    data = json.loads(statement(config, capsys, "X1", "--from", "2026-10-10", "--to", "2026-10-16", "--json"))
    assert [(x["ref"], x["running_balance"]) for x in data["lines"]] == [("P1", "40.00")]
    assert data["aging_on"] == "2026-10-16"
    assert data["balances_by_currency"] == [
        {"currency": "EUR", "opening_balance": "200.00", "closing_balance": "200.00",
         "aging": _aging("current", "200.00")},
        {"currency": "USD", "opening_balance": "100.00", "closing_balance": "40.00",
         "aging": _aging("current", "40.00")},
    ]  # fmt: skip


def test_a_customer_in_one_currency_gets_the_statement_as_before(config, capsys):
    data = json.loads(statement(config, capsys, "U1", "--json"))
    assert "balances_by_currency" not in data and all("currency" not in x for x in data["lines"])
    assert (data["opening_balance"], data["closing_balance"]) == ("0.00", "70.00")
    assert data["aging"] == _aging("31_60", "70.00")


def test_text_prints_each_lines_currency_and_balances_and_aging_per_currency(config, capsys):
    out = statement(config, capsys, "X1").splitlines()
    rows = {row.split()[-4] if row.startswith("20") else None: row for row in out}
    assert rows["(INV-I2)"].split()[-3:] == ["EUR", "200.00", "200.00"]
    assert [row.split()[-2:] for row in out if "closing balance" in row] == [
        ["EUR", "150.00"],
        ["USD", "40.00"],
    ]
    assert out[-2:] == [
        "aging on 2026-12-01 in EUR: Current 0.00, 1–30 days 150.00, 31–60 days 0.00, 61–90 days 0.00, "
        "Over 90 days 0.00",
        "aging on 2026-12-01 in USD: Current 0.00, 1–30 days 0.00, 31–60 days 40.00, 61–90 days 0.00, "
        "Over 90 days 0.00",
    ]


def test_the_portal_api_gives_balances_per_currency(config):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--config", str(config), "portal", "api-key", "create", "acme"]) == 0
    key = printed.getvalue().splitlines()[-1]
    app = create_app(config=load_config(config))
    with (
        serving_in_thread(app) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        several = client.get(
            "/v1/companies/acme/customers/X1/statement", params={"from": "2026-10-10"}
        ).json()
        one = client.get("/v1/companies/acme/customers/U1/statement").json()
    assert (several["opening_balance"], several["closing_balance"]) == (None, None)
    assert [(x["ref"], x["currency"], x["running_balance"]) for x in several["lines"]] == [
        ("P1", "USD", "40.00"),
        ("CN1", "EUR", "150.00"),
    ]
    assert several["balances_by_currency"] == [
        {"currency": "EUR", "opening_balance": "200.00", "closing_balance": "150.00"},
        {"currency": "USD", "opening_balance": "100.00", "closing_balance": "40.00"},
    ]
    # one currency: the sums as before, and the lines and balances say which currency
    assert (one["opening_balance"], one["closing_balance"]) == ("0.00", "70.00")
    assert [(x["ref"], x["currency"], x["running_balance"]) for x in one["lines"]] == [("I3", "USD", "70.00")]
    assert one["balances_by_currency"] == [
        {"currency": "USD", "opening_balance": "0.00", "closing_balance": "70.00"}
    ]


def test_the_balance_is_given_per_currency_beside_the_sum_the_spec_names(config):
    """`balance` keeps the SPEC's fields (summed over currencies, as `portal_customers`) and
    adds each currency's own, which is what a portal can show a customer billed in two."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--config", str(config), "portal", "api-key", "create", "acme"]) == 0
    key = printed.getvalue().splitlines()[-1]
    with (
        serving_in_thread(create_app(config=load_config(config))) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        several = client.get("/v1/companies/acme/customers/X1/balance", params={"on": "2026-12-01"}).json()
        one = client.get("/v1/companies/acme/customers/U1/balance", params={"on": "2026-12-01"}).json()
    assert (several["balance_due"], several["past_due_amount"], several["past_due"]) == (
        "190.00",
        "190.00",
        True,
    )
    assert several["balances_by_currency"] == [
        {"currency": "EUR", "balance_due": "150.00", "past_due_amount": "150.00", "past_due": True,
         "aging": _aging("1_30", "150.00")},
        {"currency": "USD", "balance_due": "40.00", "past_due_amount": "40.00", "past_due": True,
         "aging": _aging("31_60", "40.00")},
    ]  # fmt: skip
    assert one["balance_due"] == "70.00" and one["aging"] == _aging("31_60", "70.00")
    assert one["balances_by_currency"] == [
        {"currency": "USD", "balance_due": "70.00", "past_due_amount": "70.00", "past_due": True,
         "aging": _aging("31_60", "70.00")},
    ]  # fmt: skip


def test_customer_invoices_prints_the_balance_per_currency_when_there_are_several(config, capsys):
    capsys.readouterr()
    assert main(["--config", str(config), "customer", "invoices", "acme", "X1", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "balance due 150.00 EUR, past due 150.00 EUR (as of 2026-12-01)" in out
    assert "balance due 40.00 USD, past due 40.00 USD (as of 2026-12-01)" in out
    assert "balance due 190.00" not in out
    assert main(["--config", str(config), "customer", "invoices", "acme", "U1", "--now", NOW]) == 0
    assert "balance due 70.00, past due 70.00 (as of 2026-12-01)" in capsys.readouterr().out
