"""`arsync invoice mark-sent` while a sync writes the same invoice: the override is decided
over the invoice as it is when written, never over an earlier read of it (both stores)."""

from __future__ import annotations

from sqlalchemy import text

import store.admin
from store.admin import set_sent_override
from store.writes import write_invoices
from tests.history import books
from tests.history.books import NOW, invoice


def test_mark_sent_racing_a_void_leaves_the_voided_invoice_hidden(engine, monkeypatch):
    books.company(engine, "acme")
    books.customers(engine, "acme", ["C1"])
    books.invoices(engine, "acme", [invoice("I1", "C1", "100", sent=False)])
    read = store.admin.invoice_facts
    interleaved = []

    def void_after_the_first_read(row):
        """A sync commits the invoice's void right after the admin's command has read it."""
        facts = read(row)
        if not interleaved:
            interleaved.append(row["ref"])
            with engine.begin() as connection:
                voided = invoice("I1", "C1", "0", sent=False, voided=True)
                write_invoices(connection, "acme", [voided], now=NOW)
        return facts

    monkeypatch.setattr(store.admin, "invoice_facts", void_after_the_first_read)
    marked = set_sent_override(engine, "acme", "I1", True)
    assert interleaved == ["I1"]
    assert marked.hidden == "voided"  # what the admin is told is what the portal does
    with engine.connect() as connection:
        shown = connection.execute(text("SELECT invoice_ref FROM portal_invoices")).all()
        stored = connection.execute(text("SELECT sent_override, visible FROM invoices")).one()
    assert shown == []  # a voided invoice never reaches the portal
    assert (bool(stored[0]), bool(stored[1])) == (True, False)
