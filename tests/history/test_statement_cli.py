"""`arsync statement`: text, JSON and a PDF of several pages; bad input exits 2 naming the argument."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from datetime import date, timedelta

import pytest

from mailer.statement_doc import StatementDocument
from mailer.statement_pdf import render_pdf
from portal_rules.aging import Aging
from store.db import make_engine, upgrade
from store.history.reads import Statement, StatementLine
from sync.cli import main
from tests.history import books
from tests.history.books import D, invoice, pay, payment


@pytest.fixture
def config(tmp_path, sqlite_url):
    return write_config(tmp_path, sqlite_url, "Zoë Ångström")


def write_config(tmp_path, sqlite_url, customer_name: str):
    """A store with customer C1 ("{customer_name} C1": one invoice, one payment) and its config."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    books.company(engine, "acme", "Ærø Landscaping")
    books.customers(engine, "acme", ["C1"], name=customer_name)
    books.invoices(engine, "acme", [invoice("I1", "C1", "100", "40", issued=date(2026, 10, 1))])
    books.payments(engine, "acme", [payment("P1", "C1", "60", pay("payment", "P1", "I1", "60"))])
    engine.dispose()
    path = tmp_path / "arsync.toml"
    path.write_text(
        f'[store]\nurl = "{sqlite_url}"\n\n'
        '[[companies]]\nid = "acme"\nname = "Ærø Landscaping"\ntimezone = "UTC"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )
    return path


def test_statement_prints_json_and_writes_a_pdf(config, tmp_path):
    pdf = tmp_path / "statement.pdf"
    args = ["--config", str(config), "statement", "acme", "C1", "--json", "--pdf", str(pdf)]
    done = subprocess.run(
        [sys.executable, "-m", "sync", *args, "--now", "2026-12-01T12:00:00"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # fontTools logged ~40 lines of font subsetting at info per PDF
    data = json.loads(done.stdout)
    assert data["customer_name"] == "Zoë Ångström C1"
    # money as the portal API writes it: two places, more only when an amount has them
    assert [(x["kind"], x["ref"], x["amount"], x["running_balance"]) for x in data["lines"]] == [
        ("invoice", "I1", "100.00", "100.00"),
        ("payment", "P1", "-60.00", "40.00"),
    ]
    assert (data["opening_balance"], data["closing_balance"]) == ("0.00", "40.00")
    aging = {"current": "0.00", "1_30": "0.00", "31_60": "40.00", "61_90": "0.00", "over_90": "0.00"}
    assert data["aging"] == aging
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600  # a customer's account: its owner's only


def test_statement_text_between_dates(config, capsys):
    code = main(
        ["--config", str(config), "statement", "acme", "C1", "--from", "2026-10-02", "--to", "2026-12-31"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "opening balance" in out and "100.00" in out
    assert "payment P1 (CHK-P1)" in out
    assert re.search(r"closing balance\s+40\.00", out)


def test_statement_text_columns_line_up_with_xero_length_ids(config, tmp_path, capsys):
    """A Xero id alone is 36 characters: the description column grows to the longest one, so
    every amount and balance still ends in the same column."""
    long_ref = "1d9a6f2e-5b7c-4e21-9f3a-8c0d2b4e6f10"
    engine = make_engine(f"sqlite:///{tmp_path / 'arsync.db'}")
    books.invoices(engine, "acme", [invoice(long_ref, "C1", "25", issued=date(2026, 11, 1))])
    engine.dispose()
    assert main(["--config", str(config), "statement", "acme", "C1", "--now", "2026-12-01T12:00:00"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if re.search(r"\d\.\d\d$", line) and not line.startswith("aging")]
    assert any(long_ref in line for line in table) and len(table) >= 4
    assert len({len(line) for line in table}) == 1, table  # right-aligned to one edge


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20261010", "not a date (YYYY-MM-DD): '20261010'"),
        ("2026-W48-1", "not a date (YYYY-MM-DD): '2026-W48-1'"),
        ("2026-11-31", "not a date: day is out of range for month: '2026-11-31'"),
    ],
    ids=["compact", "iso-week", "no-such-day"],
)
def test_a_day_not_written_yyyy_mm_dd_is_refused_not_read_as_another_day(config, capsys, value, message):
    """`date.fromisoformat` alone reads 20261010 and 2026-W48-1 as days; the HTTP API refuses them."""
    code = main(["--config", str(config), "statement", "acme", "C1", "--from", "2026-10-01", "--to", value])
    err = capsys.readouterr().err
    assert code == 2
    assert f"Invalid value for --to: {message}" in err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["nosuchco", "C1"], "COMPANY"),
        (["acme", "nobody"], "CUSTOMER_REF"),
        (["acme", "C1", "--from", "2026-13-01"], "--from"),
        (["acme", "C1", "--to", "yesterday"], "--to"),
        (["acme", "C1", "--from", "2026-12-01", "--to", "2026-11-01"], "--to"),
    ],
    ids=["unknown-company", "unknown-customer", "bad-from", "bad-to", "to-before-from"],
)
def test_bad_input_exits_2_naming_the_argument(config, capsys, args, named):
    code = main(["--config", str(config), "statement", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert named in err
    assert "Traceback" not in err


def test_long_statement_runs_over_pages_with_non_ascii_names():
    day = date(2026, 1, 1)
    lines = tuple(
        StatementLine(day + timedelta(days=i), "invoice", f"Ø-{i}", f"№ {i}", D(10), D(10 * (i + 1)))
        for i in range(150)
    )
    document = StatementDocument(
        "Société Générale — Łódź", "K1", "Δήμητρα Привет Nguyễn",
        Statement(None, None, D(0), lines, D(1500)), Aging(current=D(1500)), date(2026, 6, 1),
    )  # fmt: skip
    pdf = render_pdf(document)
    pages = int(re.search(rb"/Count (\d+)", pdf).group(1))
    assert pages >= 4
    assert b"/FontFile2" in pdf  # the embedded Unicode TrueType font


@pytest.mark.parametrize("target", ["", "missing/folder/statement.pdf"], ids=["empty", "missing-folder"])
def test_a_pdf_path_that_names_no_writable_file_is_bad_usage_naming_pdf(config, tmp_path, capsys, target):
    pdf = str(tmp_path / target) if target else target
    code = main(["--config", str(config), "statement", "acme", "C1", "--pdf", pdf])
    err = capsys.readouterr().err
    assert code == 2 and "Invalid value for --pdf: cannot write" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        (
            "株式会社 東京商事",
            "cannot print 株 U+682A, 式 U+5F0F, 会 U+4F1A, 社 U+793E, 東 U+6771, 京 U+4EAC, 商 U+5546, "
            "事 U+4E8B; each is printed as '\ufffd'",
        ),
        ("Zoë Ångström", None),
    ],
    ids=["cjk-name", "latin-name"],
)
def test_characters_the_pdf_cannot_print_are_named_on_stderr_and_the_exit_stays_0(
    tmp_path, sqlite_url, capsys, name, warning
):
    config = write_config(tmp_path, sqlite_url, name)
    pdf = tmp_path / "statement.pdf"
    code = main(["--config", str(config), "statement", "acme", "C1", "--pdf", str(pdf)])
    out, err = capsys.readouterr()
    assert code == 0 and pdf.read_bytes().startswith(b"%PDF-")
    assert f"{name} C1 (C1)" in out and f"PDF statement written to {pdf}" in out
    if warning:
        assert f"warning: {pdf}: the PDF font (Noto Sans) {warning}" in err
    else:
        assert "warning" not in err
