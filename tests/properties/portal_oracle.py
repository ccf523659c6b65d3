"""What the portal views must hold for a simulated company, computed from the books alone.

An oracle for differential tests, written from SPEC sections 2, 4 and 9 and the neutral
simulator model, never from arsync's normalizers, rules or views: if both agree on a
wrong answer, they agree by accident, not by sharing code. It assumes the settings the
tests use (`import_inactive_customers = false`, no local mark-sent overrides).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from connectors.simulators.model import SimCompany, SimCredit, SimCustomer, SimInvoice, SimPayment

ZERO = Decimal("0.00")
KIND_ORDER = {"invoice": 0, "credit": 1, "payment": 2}  # SPEC 9: within one day


@dataclass(frozen=True)
class Line:
    """One `portal_statement` row (doc_number left out: a payment's is implementation's)."""

    entry_date: date | None
    kind: str
    ref: str
    amount: Decimal
    running_balance: Decimal = ZERO


@dataclass
class Portal:
    """The views of one company: by ref, the columns a differential test compares."""

    customers: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # ref -> name, balance_due
    # ref -> every other column of the view, in its order (company_id aside)
    invoices: dict[str, tuple] = field(default_factory=dict)
    payments: dict[str, tuple] = field(default_factory=dict)
    credits: dict[str, tuple] = field(default_factory=dict)
    accounts: dict[str, set[str]] = field(default_factory=dict)  # customer ref -> its contacts' emails
    statement: dict[str, list[Line]] = field(default_factory=dict)  # customer ref -> lines in order


def expected_portal(company: SimCompany, *, import_inactive: bool = False) -> Portal:
    """The rows SPEC says the portal views show for `company`'s books as they are now, with
    the company setting `import_inactive_customers = import_inactive`."""
    shown = {c.id for c in company.customers.values() if _shown_customer(company, c, import_inactive)}
    visible = {i.id: i for i in company.invoices.values() if i.customer_id in shown and _visible(company, i)}
    portal = Portal()
    for ref in shown:
        due = sum((i.balance for i in visible.values() if i.customer_id == ref), ZERO)
        portal.customers[ref] = (company.customers[ref].name, due)
    for ref in shown:
        emails = _emails(company, company.customers[ref])
        if emails:
            portal.accounts[ref] = emails
    for invoice in visible.values():
        portal.invoices[invoice.id] = (
            invoice.customer_id, invoice.doc_number, invoice.issue_date, invoice.due_date,
            invoice.currency, invoice.total, invoice.balance,
        )  # fmt: skip
    for payment in company.payments.values():
        if payment.customer_id in shown and _customer_payment(company, payment):
            money = sum((a.amount for a in payment.allocations), ZERO)
            unapplied = ZERO if company.kind == "xero" else payment.amount - money
            portal.payments[payment.id] = (
                payment.customer_id, payment.paid_on, payment.currency, payment.amount, unapplied,
                payment.reference,
            )  # fmt: skip
    for credit in company.credits.values():
        if credit.customer_id in shown and _live_credit(company, credit):
            remaining = credit.total - sum((a.amount for a in credit.allocations), ZERO)
            portal.credits[credit.id] = (
                credit.customer_id, credit.doc_number, credit.issue_date, credit.currency, credit.total,
                remaining,
            )  # fmt: skip
    lines: dict[str, list[Line]] = {}
    for customer_ref, line in _lines(company, visible):
        lines.setdefault(customer_ref, []).append(line)
    for customer_ref, entries in lines.items():
        portal.statement[customer_ref] = _running(entries)
    return portal


def _shown_customer(company: SimCompany, customer: SimCustomer, import_inactive: bool) -> bool:
    """Imported and active, or inactive (Xero: archived or GDPR request) and imported by
    setting (SPEC 2); Xero: a customer by flag or by a sales invoice naming it."""
    if company.kind == "quickbooks":
        return not customer.deleted and (customer.active or import_inactive)
    active = customer.active and not customer.gdpr_request
    sells_to = any(i.customer_id == customer.id and i.type == "ACCREC" for i in company.invoices.values())
    return (active or import_inactive) and (customer.is_customer or sells_to)


def _emails(company: SimCompany, customer: SimCustomer) -> set[str]:
    """SPEC 2 contacts: QuickBooks PrimaryEmailAddr split at commas and semicolons; Xero
    EmailAddress and the contact persons included in emails; trimmed, lower-case. A Xero
    contact whose erasure was requested keeps none (its data is gone, as arsync documents)."""
    if company.kind == "quickbooks":
        typed = [part for email in customer.emails for part in re.split(r"[,;]", email)]
    elif customer.gdpr_request:
        typed = []
    else:  # Xero has one EmailAddress: the model's first
        typed = customer.emails[:1] + [email for email, included in customer.contact_persons if included]
    return {email.strip().lower() for email in typed if email.strip()}


def _visible(company: SimCompany, invoice: SimInvoice) -> bool:
    """Sent and live (SPEC 2); the customer is checked by the caller."""
    if company.kind == "quickbooks":
        return invoice.status == "open" and (invoice.email_sent or invoice.printed)
    return invoice.type == "ACCREC" and invoice.status == "open" and invoice.email_sent


def _customer_payment(company: SimCompany, payment: SimPayment) -> bool:
    """Live money from a customer: QuickBooks TotalAmt 0 only applies credit (SPEC 9)."""
    if company.kind == "xero":
        return payment.type == "ACCRECPAYMENT" and payment.status != "deleted"
    return payment.status == "live" and payment.amount != 0


def _live_credit(company: SimCompany, credit: SimCredit) -> bool:
    if company.kind == "xero":
        return credit.type == "ACCRECCREDIT" and credit.status == "open"
    return credit.status == "open"


def _lines(company: SimCompany, visible: dict[str, SimInvoice]) -> Iterator[tuple[str, Line]]:
    """(customer ref, line) for every visible invoice, and every payment, credit note and
    QuickBooks journal entry as far as it is allocated to visible invoices."""
    for invoice in visible.values():
        yield invoice.customer_id, Line(invoice.issue_date, "invoice", invoice.id, invoice.total)
    carriers = {p.id: p for p in company.payments.values() if p.status == "live"}
    for payment in company.payments.values():
        if payment.status != "live" or payment.type != "ACCRECPAYMENT":
            continue
        if company.kind == "quickbooks" and payment.amount == 0:
            pass  # no payment line, but its journal lines below still count
        else:
            yield from _sum_line(visible, payment.allocations, payment.paid_on, "payment", payment.id)
        by_day: dict[tuple[str, date], list] = {}
        for journal_id, allocation in payment.journals:
            by_day.setdefault((journal_id, allocation.on), []).append(allocation)
        for (journal_id, day), allocations in by_day.items():
            yield from _sum_line(visible, allocations, day, "credit", journal_id)
    for credit in company.credits.values():
        if not _live_credit(company, credit):
            continue
        counted = [a for a in credit.allocations if a.via is None or a.via in carriers]
        yield from _sum_line(visible, counted, credit.issue_date, "credit", credit.id)


def _sum_line(
    visible: dict[str, SimInvoice], allocations: list, on: date, kind: str, ref: str
) -> Iterator[tuple[str, Line]]:
    """One line per customer of the visible invoices these allocations fund, if any."""
    by_customer: dict[str, Decimal] = {}
    for allocation in allocations:
        invoice = visible.get(allocation.invoice_id)
        if invoice is not None:
            by_customer[invoice.customer_id] = by_customer.get(invoice.customer_id, ZERO) + allocation.amount
    for customer_ref, amount in by_customer.items():
        yield customer_ref, Line(on, kind, ref, -amount)


def statement_order(line: Line) -> tuple:
    """SPEC 9: by entry_date (undated first), then kind (invoice, credit, payment), then ref as text."""
    return (line.entry_date is not None, line.entry_date or date.min, KIND_ORDER[line.kind], line.ref)


def _running(lines: list[Line]) -> list[Line]:
    """The lines in statement order, each with the cumulative sum of the amounts so far."""
    total, out = ZERO, []
    for line in sorted(lines, key=statement_order):
        total += line.amount
        out.append(Line(line.entry_date, line.kind, line.ref, line.amount, total))
    return out
