"""A printed statement (CLI, PDF, reminder attachment) reads its lines and its aging from one
state of the store: a sync committing between the two reads cannot make the closing
balance contradict the aging, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from sqlalchemy import event

from mailer.statement_doc import load_document
from tests.history import books
from tests.history.books import D, invoice, pay, payment

DAY = date(2026, 12, 1)


def test_a_payment_synced_between_the_statement_and_aging_reads_shows_in_neither(shared_engine, cid):
    engine = shared_engine
    books.company(engine, cid)
    books.customers(engine, cid, ["C1"])
    books.invoices(engine, cid, [invoice("I1", "C1", "100")])
    landed = []

    def sync_lands_before_the_aging_read(_connection, _cursor, statement, *_args) -> None:
        if landed or not statement.lstrip().startswith("SELECT invoices."):
            return
        landed.append(True)  # a sync's commit, on another connection: $60 paid on I1
        books.invoices(engine, cid, [invoice("I1", "C1", "100", "40")])
        books.payments(engine, cid, [payment("P1", "C1", "60", pay("payment", "P1", "I1", "60"))])

    event.listen(engine, "before_cursor_execute", sync_lands_before_the_aging_read)
    try:
        during = load_document(engine, cid, "Acme", "C1", day=DAY)
    finally:
        event.remove(engine, "before_cursor_execute", sync_lands_before_the_aging_read)
    assert landed, "the aging read never ran"
    assert (during.statement.closing_balance, during.aging.total) == (D(100), D(100))
    after = load_document(engine, cid, "Acme", "C1", day=DAY)
    assert [line.kind for line in after.statement.lines] == ["invoice", "payment"]
    assert (after.statement.closing_balance, after.aging.total) == (D(40), D(40))
