"""Hand-built companies for the end-to-end tests: one record per rule of SPEC section 2."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice

D = Decimal


def _at(days_ago: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)


def quickbooks_books(today: date) -> SimCompany:
    company = SimCompany(id="9130000000000001", name="QBO Books", kind="quickbooks")
    customers = [
        SimCustomer(
            "1", "Café Müller", True, ["ap@cafe.example, boss@cafe.example"], _at(5)
        ),  # two in one field
        SimCustomer("2", "Dormant LLC", False, ["old@dormant.example"], _at(5)),  # inactive
        SimCustomer("3", "Shared One", True, ["shared@group.example"], _at(5)),
        SimCustomer("4", "Shared Two", True, ["shared@group.example"], _at(5)),
        SimCustomer("5", "Soon Inactive", True, ["soon@inactive.example"], _at(5)),
    ]
    company.customers = {c.id: c for c in customers}
    due, past = today + timedelta(days=20), today - timedelta(days=10)
    invoices = [
        SimInvoice("101", "1001", "1", past, past, "USD", D("100.00"), D("100.00"), _at(4), email_sent=True),
        SimInvoice("102", "1002", "1", today, due, "USD", D("50.00"), D("50.00"), _at(4), printed=True),
        SimInvoice("103", "1003", "1", today, due, "USD", D("70.00"), D("70.00"), _at(4)),  # unsent
        SimInvoice("104", "1004", "1", past, past, "USD", D("80.00"), D("0.00"), _at(4), email_sent=True),
        SimInvoice("105", "1005", "1", past, due, "USD", D("30.00"), D("30.00"), _at(4), email_sent=True),
        SimInvoice("106", "1006", "2", past, past, "USD", D("40.00"), D("40.00"), _at(4), email_sent=True),
        SimInvoice("107", "1007", "3", today, due, "USD", D("10.00"), D("10.00"), _at(4), email_sent=True),
        SimInvoice("108", "1008", "5", today, due, "USD", D("15.00"), D("15.00"), _at(4), email_sent=True),
        SimInvoice(
            "109",
            "1009",
            "1",
            today,
            due,
            "USD",
            D("0.00"),
            D("0.00"),
            _at(4),
            email_sent=True,
            status="voided",
        ),
    ]
    company.invoices = {i.id: i for i in invoices}
    return company


def xero_books(today: date) -> SimCompany:
    company = SimCompany(id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", name="Xero Books", kind="xero")
    ids = {n: f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 7)}
    customers = [
        SimCustomer(
            ids[1],
            "Ørsted Bakery",
            True,
            ["accounts@orsted.example"],
            _at(5),
            contact_persons=[("pat@orsted.example", True), ("quiet@orsted.example", False)],
        ),
        SimCustomer(ids[2], "Archived Ltd", False, ["gone@archived.example"], _at(5)),
        SimCustomer(
            ids[3],
            "Paper Supplier",
            True,
            ["sales@paper.example"],
            _at(5),
            is_customer=False,
            is_supplier=True,
        ),
        SimCustomer(ids[4], "Forgotten Person", True, ["gdpr@person.example"], _at(5), gdpr_request=True),
    ]
    company.customers = {c.id: c for c in customers}
    due, past = today + timedelta(days=20), today - timedelta(days=3)
    inv = {n: f"10000000-0000-4000-8000-00000000000{n}" for n in range(1, 10)}
    invoices = [
        SimInvoice(
            inv[1], "INV-1", ids[1], past, past, "GBP", D("120.00"), D("120.00"), _at(4), email_sent=True
        ),
        SimInvoice(inv[2], "INV-2", ids[1], today, due, "GBP", D("60.00"), D("60.00"), _at(4)),  # not sent
        SimInvoice(
            inv[3],
            "INV-3",
            ids[1],
            today,
            due,
            "GBP",
            D("20.00"),
            D("20.00"),
            _at(4),
            email_sent=True,
            status="draft",
        ),
        SimInvoice(
            inv[4],
            "INV-4",
            ids[1],
            today,
            due,
            "GBP",
            D("25.00"),
            D("0.00"),
            _at(4),
            email_sent=True,
            status="voided",
        ),
        SimInvoice(
            inv[5], "INV-5", ids[1], past, past, "GBP", D("90.00"), D("0.00"), _at(4), email_sent=True
        ),
        SimInvoice(
            inv[6],
            "BILL-6",
            ids[3],
            past,
            past,
            "GBP",
            D("500.00"),
            D("500.00"),
            _at(4),
            email_sent=True,
            type="ACCPAY",
        ),
        SimInvoice(
            inv[7], "INV-7", ids[2], past, past, "GBP", D("33.00"), D("33.00"), _at(4), email_sent=True
        ),
        SimInvoice(
            inv[8],
            "INV-8",
            ids[1],
            today,
            due,
            "EUR",
            D("44.00"),
            D("44.00"),
            _at(4),
            email_sent=True,
            status="submitted",
        ),
    ]
    company.invoices = {i.id: i for i in invoices}
    return company
