"""The PDF statement prints what the store holds: every digit of every amount, the account
reference whatever the name; names and descriptions may be cut with "…", money never is.

fpdf2 is asked to draw each text in a cell; the tests record those calls (cell width, text,
the text's width in the font then set) and judge what a reader would see."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import pytest
from fpdf import FPDF

from mailer.statement_doc import StatementDocument
from mailer.statement_pdf import money, render_pdf, render_statement
from portal_rules.aging import Aging
from store.history.reads import CurrencyBalance, Statement, StatementLine
from store.types import MONEY_LIMIT
from tests.history.books import D


@dataclass(frozen=True)
class Drawn:
    width: float  # mm (a cell of width 0, which runs to the right margin: the text width)
    text: str
    text_width: float  # mm, at the font size it is drawn in

    def fits(self) -> bool:
        return self.text_width <= self.width - 2  # fpdf2's cell margins, 1 mm each side


@pytest.fixture
def drawn(monkeypatch) -> list[Drawn]:
    """Every non-empty text fpdf2 draws in a cell while the test renders."""
    texts: list[Drawn] = []
    cell = FPDF.cell

    def recording(pdf, w=None, h=None, text="", *args, **kwargs):
        if text:
            texts.append(Drawn(w or pdf.epw, text, pdf.get_string_width(text)))
        return cell(pdf, w, h, text, *args, **kwargs)

    monkeypatch.setattr(FPDF, "cell", recording)
    return texts


def document(amounts: list[str], *, name: str = "PT Sumber Makmur", ref: str = "1") -> StatementDocument:
    day = date(2026, 6, 1)
    balance, lines = D(0), []
    for n, amount in enumerate(amounts):
        balance += D(amount)
        lines.append(StatementLine(day, "invoice", f"10{n}", f"INV-10{n}", D(amount), balance))
    return StatementDocument(
        "Acme", ref, name, Statement(day, None, D(0), tuple(lines), balance), Aging(over_90=balance), day
    )


@pytest.mark.parametrize(
    "amounts",
    [
        ["1250000000000.00", "980000000000.00"],  # IDR: 2,230,000,000,000.00 (the audit's case)
        ["123456789012.00"],
        ["1234567890.00"],
        [str(MONEY_LIMIT), str(MONEY_LIMIT), "-0.0001"],  # the largest amount the store holds, twice
    ],
    ids=["idr-trillions", "line-of-123-billion", "closing-of-1.2-billion", "store-limit-sums"],
)
def test_every_amount_prints_whole_and_inside_its_cell(drawn, amounts):
    doc = document(amounts)
    render_pdf(doc)
    statement = doc.statement
    expected = {money(D(a)) for a in amounts} | {money(line.running_balance) for line in statement.lines}
    expected |= {money(statement.opening_balance), money(statement.closing_balance)}
    assert expected <= {d.text for d in drawn}, "an amount was not drawn whole"
    assert [d.text for d in drawn if d.text.endswith("…")] == []  # the names here are short
    assert [d for d in drawn if any(c.isdigit() for c in d.text) and not d.fits()] == []


LONG_NAME = "The Board of Trustees of the Leland Stanford Junior University Facilities Operations"


@pytest.mark.parametrize(
    "ref",
    ["4711", "2f4ad9a3-7c1e-4b8f-9d2a-5e6f7a8b9c0d", "W" * 64],
    ids=["quickbooks-id", "xero-guid", "64-wide-letters"],
)
def test_a_long_customer_name_is_cut_and_the_account_reference_printed_whole(drawn, ref):
    render_pdf(document(["100.00"], name=LONG_NAME, ref=ref))
    header = [d for d in drawn if d.text.startswith(("Statement for", "Account"))]
    assert any(d.text.endswith(f"(account {ref})") or d.text == f"Account {ref}" for d in header)
    assert any(d.text.startswith("Statement for The Board of Trustees") for d in header)
    assert [d for d in header if not d.fits()] == []


@pytest.mark.parametrize(
    ("name", "printed", "unprintable"),
    [
        ("株式会社 東京商事", "���� ����", "株式会社東京商事"),
        ("Café 😀 Zoë", "Café � Zoë", "😀"),
        ("Tab\tNew\nLine\r\nEnd", "Tab New Line  End", ""),
        ("I ❤\ufe0f NY, 👍🏽", "I � NY, ��", "❤👍🏽"),
        ("Δήμητρα Привет", "Δήμητρα Привет", ""),
    ],
    ids=["cjk", "emoji", "tabs-and-newlines", "variation-selector-and-skin-tone", "greek-cyrillic"],
)
def test_characters_the_font_lacks_print_as_a_visible_mark_and_are_named(drawn, name, printed, unprintable):
    rendered = render_statement(document(["100.00"], name=name))
    assert f"Statement for {printed} (account 1)" in [d.text for d in drawn]
    assert (rendered.mark, "".join(rendered.unprintable)) == ("\ufffd", unprintable)
    assert rendered.data.startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("end", "aging_on"),
    [(None, "2026-06-01"), (date(2026, 7, 31), "2026-06-01"), (date(2026, 5, 31), "2026-05-31")],
    ids=["no-end", "ends-ahead", "ended-before"],
)
def test_the_pdf_names_the_day_its_aging_is_on_and_the_day_it_was_issued(drawn, end, aging_on):
    doc = document(["100.00"])
    doc = replace(doc, statement=replace(doc.statement, start=None, end=end))
    render_pdf(doc)
    texts = [d.text for d in drawn]
    assert f"Aging on {aging_on} (days past due)" in texts
    assert any(text.endswith("issued 2026-06-01") for text in texts)


def test_a_statement_in_two_currencies_prints_each_amount_with_its_currency_and_balances_per_currency(drawn):
    day = date(2026, 6, 1)
    lines = (
        StatementLine(day, "invoice", "I1", None, D(100), D(100), "USD"),
        StatementLine(day, "invoice", "I2", None, D(200), D(300), "EUR"),
        StatementLine(day, "payment", "P1", None, D(-60), D(240), "USD"),
    )
    balances = (CurrencyBalance("EUR", D(0), D(200)), CurrencyBalance("USD", D(0), D(40)))
    agings = (("EUR", Aging(current=D(200))), ("USD", Aging(days_1_30=D(40))))
    statement = Statement(None, None, D(0), lines, D(240), balances)
    render_pdf(StatementDocument("Acme", "X1", "Xavier", statement, Aging(), day, agings))
    texts = [d.text for d in drawn]
    assert [t for t in texts if t[:4] in ("USD ", "EUR ")][:6] == [
        "USD 100.00",
        "USD 100.00",
        "EUR 200.00",
        "EUR 200.00",
        "USD -60.00",
        "USD 40.00",
    ]
    assert "240.00" not in " ".join(texts)  # no sum of dollars and euros
    assert texts.count("Closing balance") == 2 and {"EUR 200.00", "USD 40.00"} <= set(texts)
    assert [t for t in texts if t.startswith("Aging on")] == [
        "Aging on 2026-06-01 (days past due), EUR",
        "Aging on 2026-06-01 (days past due), USD",
    ]
