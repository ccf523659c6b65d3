"""SPEC section 2 end to end: simulators -> official SDKs -> connectors -> orchestrator -> views,
through `arsync sync`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connectors.simulators import mutations

PORTAL_INVOICES = "SELECT invoice_ref FROM portal_invoices WHERE company_id = :c ORDER BY invoice_ref"
PORTAL_CUSTOMERS = (
    "SELECT customer_ref, balance_due FROM portal_customers WHERE company_id = :c ORDER BY customer_ref"
)
ACCOUNTS = (
    "SELECT customer_ref, email, status, eligible FROM portal_accounts WHERE company_id = :c "
    "ORDER BY customer_ref, email"
)


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_quickbooks_first_sync_applies_every_rule(world):
    summaries = world.sync()
    assert {c: s["status"] for c, s in summaries.items()} == {
        "qbo": "ok",
        "qbo_single": "ok",
        "qbo_all": "ok",
        "xero": "ok",
    }
    # sent (101), printed only (102), paid (104), part of balance (105), other customers (107, 108);
    # not: unsent 103, voided 109, inactive customer's 106
    assert [r[0] for r in world.rows(PORTAL_INVOICES, c="qbo")] == ["101", "102", "104", "105", "107", "108"]
    customers = {ref: money(balance) for ref, balance in world.rows(PORTAL_CUSTOMERS, c="qbo")}
    assert customers == {
        "1": Decimal("180.00"),
        "3": Decimal("10.00"),
        "4": Decimal("0.00"),
        "5": Decimal("15.00"),
    }
    assert world.rows("SELECT COUNT(*) FROM customers WHERE company_id = 'qbo' AND ref = '2'") == [(0,)]
    # the setting imports the inactive customer, and its invoice becomes visible
    assert "106" in [r[0] for r in world.rows(PORTAL_INVOICES, c="qbo_all")]
    accounts = [(ref, email, status, bool(ok)) for ref, email, status, ok in world.rows(ACCOUNTS, c="qbo")]
    assert accounts[:2] == [
        ("1", "ap@cafe.example", "not_invited", True),  # two addresses in one field
        ("1", "boss@cafe.example", "not_invited", False),
    ]  # not primary
    assert ("3", "shared@group.example", "not_invited", True) in accounts
    assert ("4", "shared@group.example", "not_invited", True) in accounts  # multi-account: both reach it
    single = [
        (ref, status)
        for ref, email, status, _ in world.rows(ACCOUNTS, c="qbo_single")
        if email == "shared@group.example"
    ]
    assert single == [("3", "not_invited"), ("4", "conflict")]
    code, out, _ = world.cli("portal", "conflicts", "qbo_single")
    assert code == 0 and "shared@group.example" in out and "customer 4: conflict" in out


def test_quickbooks_changes_between_syncs(world):
    world.sync("qbo")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    books = world.qbo_books
    mutations.refund(books, "104", Decimal("25.00"), at)  # a paid invoice reopens
    mutations.delete(books, "105", at)  # only CDC tells
    mutations.deactivate_customer(books, "5", at)
    mutations.mark_sent(books, "103", at)
    assert world.sync("qbo")["qbo"]["adjustments"] == 1
    assert world.sync("qbo")["qbo"]["adjustments"] == 0  # the same reopening seen again
    assert [r[0] for r in world.rows(PORTAL_INVOICES, c="qbo")] == ["101", "102", "103", "104", "107"]
    assert "5" not in [r[0] for r in world.rows(PORTAL_CUSTOMERS, c="qbo")]
    assert world.rows("SELECT active FROM customers WHERE company_id = 'qbo' AND ref = '5'")[0][0] in (
        0,
        False,
    )
    adjustments = world.rows(
        "SELECT invoice_ref, previous_balance, new_balance, amount FROM adjustments WHERE company_id = 'qbo'"
    )
    assert [(r, money(p), money(n), money(a)) for r, p, n, a in adjustments] == [
        ("104", Decimal("0.00"), Decimal("25.00"), Decimal("25.00"))
    ]
    later = at + timedelta(seconds=2)
    mutations.pay(books, "104", Decimal("25.00"), later)
    world.sync("qbo")
    mutations.refund(books, "104", Decimal("10.00"), later + timedelta(seconds=1))
    assert world.sync("qbo")["qbo"]["adjustments"] == 1  # a second reopening, a second adjustment


def test_xero_first_sync_and_a_void(world):
    world.sync("xero")
    xero_refs = {i.doc_number: i.id for i in world.xero_books.invoices.values()}
    visible = {r[0] for r in world.rows(PORTAL_INVOICES, c="xero")}
    # INV-1 sent; INV-5 paid and sent; not: unsent, DRAFT, VOIDED, ACCPAY bill, archived contact, SUBMITTED
    assert visible == {xero_refs["INV-1"], xero_refs["INV-5"]}
    names = [r[0] for r in world.rows("SELECT display_name FROM customers WHERE company_id = 'xero'")]
    assert names == ["Ørsted Bakery"]  # archived, GDPR request and supplier-only contacts are not imported
    emails = [r[1] for r in world.rows(ACCOUNTS, c="xero")]
    assert emails == ["accounts@orsted.example", "pat@orsted.example"]  # the person not in emails is left out
    with world.xero.mutate(world.xero_books.id) as books:
        mutations.void(books, xero_refs["INV-1"], datetime.now(UTC) + timedelta(seconds=1))
    world.sync("xero")
    assert {r[0] for r in world.rows(PORTAL_INVOICES, c="xero")} == {xero_refs["INV-5"]}


def test_resync_and_full_sync_change_nothing(world):
    world.sync()
    before = {c: world.rows(PORTAL_INVOICES, c=c) + world.rows(ACCOUNTS, c=c) for c in ("qbo", "xero")}
    world.sync()
    summaries = world.sync("--full")
    assert all(s["status"] == "ok" for s in summaries.values())
    after = {c: world.rows(PORTAL_INVOICES, c=c) + world.rows(ACCOUNTS, c=c) for c in ("qbo", "xero")}
    assert after == before
    assert world.rows("SELECT COUNT(*) FROM adjustments") == [(0,)]


def test_local_state_survives_a_full_sync(world):
    world.sync("qbo")
    assert world.cli("invoice", "mark-sent", "qbo", "103")[0] == 0
    assert world.cli("invoice", "mark-unsent", "qbo", "101")[0] == 0
    assert world.cli("portal", "enable", "qbo", "--customer", "1", "--email", "boss@cafe.example")[0] == 0
    assert world.cli("customer", "pause-reminders", "qbo", "3")[0] == 0
    world.sync("qbo", "--full")
    visible = [r[0] for r in world.rows(PORTAL_INVOICES, c="qbo")]
    assert "103" in visible and "101" not in visible
    boss = [r for r in world.rows(ACCOUNTS, c="qbo") if r[1] == "boss@cafe.example"]
    assert bool(boss[0][3]) is True
    assert world.rows("SELECT reminders_paused FROM customers WHERE company_id='qbo' AND ref='3'")[0][0] in (
        1,
        True,
    )
    code, _, err = world.cli("invoice", "mark-sent", "qbo", "nope")
    assert code == 2 and "INVOICE_REF" in err and "no invoice 'nope'" in err


def test_a_full_sync_of_stored_books_still_records_a_reopened_invoice(world):
    """A full pull writes its first pages unread; meeting the stored books, it compares them."""
    world.sync("qbo")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    mutations.refund(world.qbo_books, "104", Decimal("25.00"), at)
    summary = world.sync("qbo", "--full")["qbo"]
    assert (summary["status"], summary["adjustments"]) == ("ok", 1)
    adjustments = world.rows("SELECT invoice_ref, amount FROM adjustments WHERE company_id = 'qbo'")
    assert [(ref, money(amount)) for ref, amount in adjustments] == [("104", Decimal("25.00"))]
    assert "104" in [r[0] for r in world.rows(PORTAL_INVOICES, c="qbo")]
