"""A customer's statement as a PDF (fpdf2): company, customer, period, lines, closing balance, aging.

fpdf2's core fonts are Latin-1 only, so the text is set in Noto Sans (Latin, Greek,
Cyrillic, Vietnamese), shipped as a Python package (`fontpkg-noto-sans`). Its file is a
variable font: fpdf2 embeds its default instance (regular) quickly, while instancing a
bold weight costs tens of seconds, so emphasis is by size and colour instead. Long
statements run over several pages; each repeats the header and the column headings.

Money is never cut: the money columns are as wide as the document's widest amount needs
(taken from Reference and Document, whose texts may end in "…"), and an amount still too
wide is set smaller, down to SMALLEST (an IDR or VND balance runs to trillions).
A character the font lacks (CJK, emoji) prints as a visible mark, and the rendering says
which ones those were (`mailer.printable`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from mailer.printable import Printable
from mailer.statement_doc import StatementDocument
from portal_rules.aging import Aging
from store.history.reads import Statement

FONT = "NotoSans"
GREY = (110, 110, 110)
INK = (20, 20, 20)
COLUMNS = (("Date", 24, "L"), ("Type", 22, "L"), ("Reference", 36, "L"), ("Document", 38, "L"),
           ("Amount", 30, "R"), ("Balance", 30, "R"))  # fmt: skip
AGING_LABELS = {"current": "Current", "1_30": "1–30 days", "31_60": "31–60 days",
                "61_90": "61–90 days", "over_90": "Over 90 days"}  # fmt: skip
KIND_LABELS = {"invoice": "Invoice", "credit": "Credit", "payment": "Payment"}
MONEY_COLUMNS = ("Amount", "Balance")
DONORS = ("Document", "Reference")  # the columns a wider money column takes its room from
NARROWEST = 20  # mm a donor column keeps
SMALLEST = 5  # pt: the floor an amount too wide for its cell is set at
BODY, CLOSING = 9, 11  # pt: lines, and the closing balance row
PAD = 2  # mm: fpdf2's cell margins, one each side
NAME_ROOM = 50  # mm: the least a customer name gets beside its account reference


def money(amount: Decimal) -> str:
    """Two places, or as many as the amount holds (the store keeps four): every line and
    running balance is printed exactly, so the printed lines add up to the printed balances."""
    places = max(2, -int(amount.normalize().as_tuple().exponent))
    return f"{amount:,.{places}f}"


def period(statement: Statement) -> str:
    """The period a statement covers, in words. Without an end it holds everything the books
    hold from its start on, an invoice dated ahead of today included (as the balance due does)."""
    if statement.start and statement.end:
        return f"{statement.start.isoformat()} to {statement.end.isoformat()}"
    if statement.start:
        return f"all activity from {statement.start.isoformat()}"
    if statement.end:
        return f"all activity to {statement.end.isoformat()}"
    return "all activity"


class _Pdf(FPDF):
    def __init__(self, document: StatementDocument, font_path: str) -> None:
        super().__init__(format="A4")
        self.document = document
        self.add_font(FONT, "", font_path)
        self.printable = Printable(font_path)
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)
        self.table_open = False  # column headings follow the page header while lines are printed
        self.widths = _widths(self, document)
        self.alias_nb_pages()

    def header(self) -> None:
        doc = self.document
        self._text(doc.company_name, 17, INK, height=9)
        self._customer(self.printable(doc.customer_name), self.printable(doc.customer_ref))
        self._text(f"Period: {period(doc.statement)}  ·  issued {doc.day.isoformat()}", 9, GREY)
        self.ln(3)
        if self.table_open:
            self.headings()

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FONT, "", 8)
        self.set_text_color(*GREY)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")

    def headings(self) -> None:
        self.set_font(FONT, "", 9)
        self.set_text_color(*GREY)
        for (title, _, align), width in zip(COLUMNS, self.widths, strict=True):
            self.cell(width, 6, title, border="B", align=align)
        self.ln(7)

    def row(self, cells: tuple[str, ...], *, size: float = BODY, color=INK) -> None:
        self.set_text_color(*color)
        for text, (title, _, align), width in zip(cells, COLUMNS, self.widths, strict=True):
            if title in MONEY_COLUMNS:
                self.set_font(FONT, "", _fitting_size(self, text, width, size))
            else:
                self.set_font(FONT, "", size)
                text = _fit(self, self.printable(text), width)
            self.cell(width, 5.5, text, align=align)
        self.ln(5.5)

    def summary(self, label: str, balance: str, *, size: float = BODY, color=INK) -> None:
        """A row of a label and a balance only: the label runs from Reference to Amount."""
        self.set_text_color(*color)
        lead, room, last = sum(self.widths[:2]), sum(self.widths[2:5]), self.widths[5]
        self.cell(lead, 5.5)
        self.set_font(FONT, "", size)
        self.cell(room, 5.5, _fit(self, label, room))
        self.set_font(FONT, "", _fitting_size(self, balance, last, size))
        self.cell(last, 5.5, balance, align="R")
        self.ln(5.5)

    def _customer(self, name: str, ref: str) -> None:
        """The line "Statement for NAME (account REF)": a long name is cut, never the reference.
        A reference that would leave the name less than NAME_ROOM goes on a line of its own, in
        smaller type if it must."""
        self.set_font(FONT, "", 11)
        account = f" (account {ref})"
        room = self.epw - self.get_string_width(f"Statement for {account}")
        if room >= NAME_ROOM:
            self._text(f"Statement for {_fit(self, name, room)}{account}", 11, INK, height=6)
            return
        self._text(f"Statement for {name}", 11, INK, height=6)
        text = f"Account {ref}"
        self.set_font(FONT, "", _fitting_size(self, text, self.epw, 11))
        self.cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _text(self, text: str, size: float, color, *, height: float = 5) -> None:
        self.set_font(FONT, "", size)
        self.set_text_color(*color)
        text = _fit(self, self.printable(text), self.epw)
        self.cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """`text` shortened with an ellipsis so it stays inside its column (never money)."""
    if pdf.get_string_width(text) <= width - PAD:
        return text
    while text and pdf.get_string_width(text + "…") > width - PAD:
        text = text[:-1]
    return text + "…"


def _width(pdf: FPDF, text: str, size: float) -> float:
    pdf.set_font(FONT, "", size)
    return pdf.get_string_width(text)


def _fitting_size(pdf: FPDF, text: str, width: float, size: float) -> float:
    """The font size, `size` or smaller down to SMALLEST, at which `text` fits a cell `width`
    wide. Text width grows linearly with size; past the floor the text is still printed whole."""
    need = _width(pdf, text, size)
    if need <= width - PAD:
        return size
    return max(SMALLEST, math.floor(size * (width - PAD) / need * 10) / 10)


@dataclass(frozen=True, slots=True)
class _Money:
    """The money texts a statement prints. With several currencies each names its currency,
    a running balance is in its line's currency, and there is a balance per currency."""

    amounts: tuple[str, ...]  # per line
    balances: tuple[str, ...]  # per line: the running balance
    openings: tuple[str, ...]
    closings: tuple[str, ...]


def _money_texts(document: StatementDocument) -> _Money:
    statement = document.statement
    if not document.several_currencies:
        return _Money(
            tuple(money(line.amount) for line in statement.lines),
            tuple(money(line.running_balance) for line in statement.lines),
            (money(statement.opening_balance),),
            (money(statement.closing_balance),),
        )
    running = statement.running_in_currency()
    per_currency = [balance for balance, _ in document.by_currency()]
    return _Money(
        tuple(f"{line.currency} {money(line.amount)}" for line in statement.lines),
        tuple(f"{line.currency} {money(b)}" for line, b in zip(statement.lines, running, strict=True)),
        tuple(f"{b.currency} {money(b.opening_balance)}" for b in per_currency),
        tuple(f"{b.currency} {money(b.closing_balance)}" for b in per_currency),
    )


def _widths(pdf: FPDF, document: StatementDocument) -> tuple[float, ...]:
    """The column widths: a money column as wide as its widest amount needs (the closing
    balance at its own size), its extra room taken from the donors down to NARROWEST."""
    texts = _money_texts(document)
    closing = max(_width(pdf, text, CLOSING) for text in texts.closings)
    needs = {
        "Amount": max((_width(pdf, text, BODY) for text in texts.amounts), default=0),
        "Balance": max([closing, *(_width(pdf, text, BODY) for text in (*texts.balances, *texts.openings))]),
    }
    widths = {title: float(width) for title, width, _ in COLUMNS}
    for title, need in needs.items():
        for donor in DONORS:
            # half a millimetre to spare, so rounding cannot shrink the widest amount after all
            taken = min(need + PAD + 0.5 - widths[title], widths[donor] - NARROWEST)
            if taken > 0:
                widths[title] += taken
                widths[donor] -= taken
    return tuple(widths[title] for title, _, _ in COLUMNS)


@dataclass(frozen=True, slots=True)
class StatementPdf:
    """A rendered statement and the characters of it the font could not print."""

    data: bytes
    unprintable: tuple[str, ...]  # in the order met, each once
    mark: str  # what was printed in their place


def render_pdf(document: StatementDocument, font_path: str | None = None) -> bytes:
    """The statement as PDF bytes."""
    return render_statement(document, font_path).data


def render_statement(document: StatementDocument, font_path: str | None = None) -> StatementPdf:
    """The statement as a PDF, with what of it could not be printed as it is."""
    pdf = _Pdf(document, font_path or statement_font())
    statement, texts = document.statement, _money_texts(document)
    pdf.table_open = True
    pdf.add_page()
    if statement.start is not None:
        for opening in texts.openings:
            pdf.summary("Opening balance", opening, color=GREY)
    for line, amount, balance in zip(statement.lines, texts.amounts, texts.balances, strict=True):
        date_text = line.entry_date.isoformat() if line.entry_date else "—"
        kind = KIND_LABELS.get(line.kind, line.kind)
        pdf.row((date_text, kind, line.ref, line.doc_number or "", amount, balance))
    if not statement.lines:
        pdf.summary("No activity in this period", "", color=GREY)
    pdf.table_open = False
    pdf.ln(2)
    for closing in texts.closings:
        pdf.summary("Closing balance", closing, size=CLOSING)
    if document.several_currencies:
        for balance, aging in document.by_currency():
            _aging(pdf, document, aging, f", {balance.currency}")
    else:
        _aging(pdf, document, document.aging)
    data = bytes(pdf.output())
    return StatementPdf(data, tuple(pdf.printable.missing), pdf.printable.mark)


def _aging(pdf: _Pdf, document: StatementDocument, aging: Aging, currency: str = "") -> None:
    buckets = aging.buckets()
    width = pdf.epw / (len(buckets) + 1)
    if pdf.will_page_break(24):
        pdf.add_page()
    pdf.ln(6)
    pdf._text(f"Aging on {document.aging_on.isoformat()} (days past due){currency}", 10, INK, height=7)
    pdf.set_font(FONT, "", BODY)
    pdf.set_text_color(*GREY)
    for label in [*(AGING_LABELS[k] for k in buckets), "Total due"]:
        pdf.cell(width, 6, label, border="B", align="R")
    pdf.ln(7)
    amounts = [money(amount) for amount in [*buckets.values(), aging.total]]
    # one size for the whole row, the largest at which every amount fits its cell
    pdf.set_font(FONT, "", min(_fitting_size(pdf, text, width, BODY) for text in amounts))
    pdf.set_text_color(*INK)
    for text in amounts:
        pdf.cell(width, 6, text, align="R")
    pdf.ln(6)


def statement_font() -> str:
    """The Unicode TrueType font the statement is set in."""
    import fontpkg

    return str(fontpkg.path("Noto Sans"))


def write_private(path: Path, data: bytes) -> None:
    """Write a statement readable by its owner only (0600), as the store and the outbox's files
    are: a customer's account history is not for every user of the host. A file already there
    keeps its mode (its owner chose it)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
