"""`arsync invoice mark-sent` while a sync writes the same invoice: the override is decided
over the invoice as it is when written, never over an earlier read of it (both stores)."""

from __future__ import annotations

from sqlalchemy import text

import store.admin
import store.writes
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


def test_a_sync_racing_mark_sent_keeps_the_invoice_the_admin_marked_shown(engine, monkeypatch):
    books.company(engine, "acme")
    books.customers(engine, "acme", ["C1"])
    books.invoices(engine, "acme", [invoice("I1", "C1", "100", sent=False)])
    read = store.writes._stored_state
    interleaved = []

    def mark_sent_after_the_read(connection, company_id, refs):
        """The admin's mark-sent commits right after the sync read the page's stored state."""
        found = read(connection, company_id, refs)
        interleaved.append(set_sent_override(engine, "acme", "I1", True).hidden)
        return found

    monkeypatch.setattr(store.writes, "_stored_state", mark_sent_after_the_read)
    with engine.begin() as connection:  # the books changed the balance, not the sent flag
        write_invoices(connection, "acme", [invoice("I1", "C1", "100", "90", sent=False)], now=NOW)
    assert interleaved == [None]  # the admin was told the portal shows it
    with engine.connect() as connection:
        shown = connection.execute(text("SELECT invoice_ref, balance FROM portal_invoices")).all()
        stored = connection.execute(text("SELECT sent_override, visible FROM invoices")).one()
    assert [(ref, str(balance)) for ref, balance in shown] in ([("I1", "90.0")], [("I1", "90.0000")])
    assert (bool(stored[0]), bool(stored[1])) == (True, True)
