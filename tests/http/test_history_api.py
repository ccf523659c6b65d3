"""Payments, credits, the statement and aging through the portal API (`store.portal` is the truth)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from mailer.statement_doc import statement_disposition
from store import portal
from tests.history import books
from tests.http.conftest import Served

TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="package")
def history(served: Served) -> Served:
    """Customer 1 of `qbo` paid invoice 104 and holds a credit note, part of it applied to 105."""
    engine = served.engine()
    try:
        paid = TODAY - timedelta(days=8)
        books.payments(
            engine,
            "qbo",
            [books.payment("P1", "1", "80.00", books.pay("payment", "P1", "104", "80.00"), on=paid)],
        )
        credited = TODAY - timedelta(days=5)
        books.credits(
            engine,
            "qbo",
            [
                books.credit(
                    "C1", "1", "12.50", "2.50", books.pay("credit", "C1", "105", "10.00"), on=credited
                )
            ],
        )
    finally:
        engine.dispose()
    return served


def test_payments_and_credits_with_money_as_strings(history: Served):
    with history.client("qbo") as client:
        payments = client.get("/v1/companies/qbo/customers/1/payments")
        credits = client.get("/v1/companies/qbo/customers/1/credits")
        none = client.get("/v1/companies/qbo/customers/3/payments")
        unknown = client.get("/v1/companies/qbo/customers/999/credits")
    assert payments.status_code == credits.status_code == 200
    assert payments.json() == {
        "payments": [
            {
                "company_id": "qbo", "customer_ref": "1", "payment_ref": "P1",
                "paid_on": (TODAY - timedelta(days=8)).isoformat(), "currency": "USD",
                "amount": "80.00", "unapplied": "0.00", "reference": "CHK-P1",
            }
        ]
    }  # fmt: skip
    [credit] = credits.json()["credits"]
    assert (credit["credit_ref"], credit["doc_number"], credit["total"], credit["remaining"]) == (
        "C1", "CN-C1", "12.50", "2.50",
    )  # fmt: skip
    assert none.json() == {"payments": []}
    assert (unknown.status_code, unknown.json()) == (404, {"error": "no such customer"})


def test_statement_whole_and_between_two_days(history: Served):
    engine = history.engine()
    whole_truth = portal.statement(engine, "qbo", "1")
    start = TODAY - timedelta(days=6)
    part_truth = portal.statement(engine, "qbo", "1", start=start, end=TODAY)
    engine.dispose()
    with history.client("qbo") as client:
        whole = client.get("/v1/companies/qbo/customers/1/statement").json()
        part = client.get(
            "/v1/companies/qbo/customers/1/statement",
            params={"from": start.isoformat(), "to": TODAY.isoformat()},
        ).json()
        backwards = client.get(
            "/v1/companies/qbo/customers/1/statement",
            params={"from": TODAY.isoformat(), "to": start.isoformat()},
        )
        bad = client.get("/v1/companies/qbo/customers/1/statement", params={"from": "last week"})
        ahead = client.get("/v1/companies/qbo/customers/1/statement", params={"from": "2999-01-01"})
        period_ahead = client.get(
            "/v1/companies/qbo/customers/1/statement", params={"from": "2999-01-01", "to": "2999-12-31"}
        )
    assert [(line["kind"], line["ref"]) for line in whole["lines"]] == [
        (x.kind, x.ref) for x in whole_truth.lines
    ]
    assert {"payment", "credit", "invoice"} <= {line["kind"] for line in whole["lines"]}
    payment = next(line for line in whole["lines"] if line["kind"] == "payment")
    assert payment["amount"] == "-80.00"
    assert whole["closing_balance"] == whole["lines"][-1]["running_balance"]
    assert whole["from"] is None and whole["to"] is None and whole["opening_balance"] == "0.00"
    assert part["from"] == start.isoformat() and part["to"] == TODAY.isoformat()
    assert part["opening_balance"] == f"{part_truth.opening_balance:.2f}"
    assert [line["ref"] for line in part["lines"]] == [x.ref for x in part_truth.lines]
    assert all(start <= date.fromisoformat(line["entry_date"]) <= TODAY for line in part["lines"])
    assert (backwards.status_code, backwards.json()) == (422, {"error": "query parameter 'from': after 'to'"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("query parameter 'from':")
    # as `arsync statement`: a start after today needs an end (a typo, else a period ahead)
    assert ahead.status_code == 422 and ahead.json()["error"].startswith(
        "query parameter 'from': after today ("
    )
    assert period_ahead.status_code == 200 and period_ahead.json()["lines"] == []


def test_empty_day_parameters_read_as_absent(history: Served):
    """`?from=&to=` is what an HTML form sends for fields left empty: the whole statement, not
    a 422; an empty `on` is today, as if not given."""
    engine = history.engine()
    up_to_today = portal.statement(engine, "qbo", "1", end=TODAY)
    engine.dispose()
    path = "/v1/companies/qbo/customers/1"
    with history.client("qbo") as client:
        whole = client.get(f"{path}/statement").json()
        empty = client.get(f"{path}/statement?from=&to=")
        open_start = client.get(f"{path}/statement", params={"from": "", "to": TODAY.isoformat()})
        today = client.get(f"{path}/balance").json()
        empty_on = client.get(f"{path}/balance?on=")
    assert (empty.status_code, empty.json()) == (200, whole)
    assert open_start.status_code == 200 and open_start.json()["from"] is None
    assert [line["ref"] for line in open_start.json()["lines"]] == [x.ref for x in up_to_today.lines]
    assert (empty_on.status_code, empty_on.json()) == (200, today)


def test_balance_carries_the_aging_buckets(history: Served):
    with history.client("qbo") as client:
        body = client.get("/v1/companies/qbo/customers/1/balance", params={"on": TODAY.isoformat()}).json()
        later = client.get(
            "/v1/companies/qbo/customers/1/balance", params={"on": (TODAY + timedelta(days=45)).isoformat()}
        ).json()
    # 101 (100.00) is 10 days past due; 102 (50.00) and 105 (30.00) are not due yet.
    assert body["aging"] == {
        "current": "80.00",
        "1_30": "100.00",
        "31_60": "0.00",
        "61_90": "0.00",
        "over_90": "0.00",
    }
    assert later["aging"]["31_60"] == "100.00" and later["aging"]["1_30"] == "80.00"


def test_the_statement_as_a_pdf_is_the_one_the_cli_writes(history: Served, tmp_path):
    """The PDF a portal offers for download is `arsync statement --pdf`'s, byte for byte but
    its creation time; a bad period and an unknown customer answer as the JSON statement."""
    start = TODAY - timedelta(days=6)
    path = "/v1/companies/qbo/customers/1/statement.pdf"
    with history.client("qbo") as client:
        whole = client.get(path)
        part = client.get(path, params={"from": start.isoformat(), "to": TODAY.isoformat()})
        backwards = client.get(path, params={"from": TODAY.isoformat(), "to": start.isoformat()})
        unknown = client.get("/v1/companies/qbo/customers/999/statement.pdf")
    with history.client() as keyless:
        refused = keyless.get(path)
    assert whole.status_code == part.status_code == 200
    assert whole.headers["content-type"] == "application/pdf"
    assert whole.headers["content-disposition"] == 'attachment; filename="statement-1.pdf"'
    for answer, period in ((whole, []), (part, ["--from", start.isoformat(), "--to", TODAY.isoformat()])):
        written = tmp_path / "cli.pdf"
        code, _, err = history.cli("statement", "qbo", "1", "--pdf", str(written), *period)
        assert code == 0, err
        assert _undated(answer.content) == _undated(written.read_bytes())
    assert _undated(whole.content) != _undated(part.content)
    assert (backwards.status_code, backwards.json()) == (422, {"error": "query parameter 'from': after 'to'"})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "no such customer"})
    assert refused.status_code == 401


def _undated(pdf: bytes) -> bytes:
    """A PDF without its creation time and the file id fpdf2 derives from it."""
    assert pdf.startswith(b"%PDF-")
    return re.sub(rb"/ID \[<[0-9A-F]+><[0-9A-F]+>\]", b"", re.sub(rb"/CreationDate \(D:[^)]*\)", b"", pdf))


@pytest.mark.parametrize(
    ("ref", "disposition"),
    [
        ("10", 'attachment; filename="statement-10.pdf"'),
        ("Ü-1", "attachment; filename=\"statement---1.pdf\"; filename*=UTF-8''statement-%C3%9C-1.pdf"),
        (
            'a"b\r\n',
            "attachment; filename=\"statement-a-b-.pdf\"; filename*=UTF-8''statement-a%22b%0D%0A.pdf",
        ),
    ],
    ids=["plain", "non-ascii-kept-in-filename-star", "quote-and-newline-never-raw"],
)
def test_the_pdfs_file_name_keeps_the_ref_and_never_breaks_the_header(ref, disposition):
    assert statement_disposition(ref) == disposition
