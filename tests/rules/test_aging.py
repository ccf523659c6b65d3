"""Aging buckets: days past due on a given day, over visible invoices with a balance."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from portal_rules.aging import Settlement, aging, aging_day, bucket, invoices_on
from tests.rules.factories import day, invoice


@pytest.mark.parametrize(
    ("days", "expected"),
    [(-5, "current"), (0, "current"), (1, "days_1_30"), (30, "days_1_30"), (31, "days_31_60"),
     (60, "days_31_60"), (61, "days_61_90"), (90, "days_61_90"), (91, "over_90"), (4000, "over_90")],
    ids=lambda v: str(v),
)  # fmt: skip
def test_bucket_edges(days, expected):
    assert bucket(days) == expected


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        (invoice(due="2026-06-01"), "current"),
        (invoice(due=None), "current"),
        (invoice(due="2026-05-31"), "days_1_30"),
        (invoice(due="2026-02-01"), "over_90"),
        (invoice(due="2026-02-01", sent=False), None),
        (invoice(due="2026-02-01", voided=True), None),
        (invoice(due="2026-02-01", balance="0"), None),
        (invoice(due="2026-02-01", balance="-5"), None),
    ],
    ids=["due-today", "no-due-date", "one-day-late", "long-late", "unsent", "voided", "paid", "credit"],
)
def test_which_invoices_count_and_where(facts, field):
    result = aging([facts], day("2026-06-01"))
    assert result.total == (facts.balance if field else 0)
    if field:
        assert getattr(result, field) == facts.balance


def test_hidden_customer_owes_nothing_in_any_bucket():
    facts = [invoice("I1", due="2026-01-01"), invoice("I2", balance="12.34")]
    assert aging(facts, day("2026-06-01")).buckets() == {
        "current": Decimal("12.34"), "1_30": 0, "31_60": 0, "61_90": 0, "over_90": Decimal("100.00")
    }  # fmt: skip
    assert aging(facts, day("2026-06-01"), customer_visible=False).total == 0


@pytest.mark.parametrize(
    ("end", "expected"),
    [(None, "2026-06-10"), ("2026-12-31", "2026-06-10"), ("2026-06-10", "2026-06-10"),
     ("2026-06-09", "2026-06-09")],
    ids=["no-end", "ends-ahead", "ends-today", "ended-yesterday"],
)  # fmt: skip
def test_a_statement_ages_today_unless_it_ended_before(end, expected):
    assert aging_day(day("2026-06-10"), day(end) if end else None) == day(expected)


def _issued(issued: str | None, **kw):
    return replace(invoice(**kw), issue_date=day(issued) if issued else None)


@pytest.mark.parametrize(
    ("facts", "settled", "balance"),
    [
        (_issued("2026-05-01", total="100", balance="0"), [], "100"),
        (_issued("2026-05-01", total="100", balance="0"), [("2026-05-31", "30")], "70"),
        (_issued("2026-05-01", total="100", balance="0"), [("2026-06-01", "30")], "100"),
        (_issued("2026-05-01", total="100", balance="0"), [(None, "30"), ("2026-05-02", "20")], "50"),
        (_issued("2026-05-01", ref="I2", total="100", balance="0"), [("2026-05-02", "30")], "100"),
        (_issued(None, total="100", balance="0"), [], "100"),
        (_issued("2026-06-01", total="100"), [], None),
    ],
    ids=["unsettled", "settled-before", "settled-after", "undated-settlement", "other-invoice",
         "undated-invoice", "issued-after"],
)  # fmt: skip
def test_an_invoice_on_a_day_owes_its_total_less_what_was_settled_by_then(facts, settled, balance):
    settlements = [Settlement("I1", day(on) if on else None, Decimal(amount)) for on, amount in settled]
    found = invoices_on([facts], settlements, day("2026-05-31"))
    assert [f.balance for f in found] == ([Decimal(balance)] if balance else [])
