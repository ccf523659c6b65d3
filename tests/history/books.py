"""Small account histories written straight through the store's writers (no connector)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal_rules.records import AllocationRecord, CreditRecord, CustomerRecord, InvoiceRecord, PaymentRecord
from store.history.writes import write_credits, write_payments
from store.tables import Company
from store.writes import write_customers, write_invoices

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D = Decimal


def company(engine: Engine, company_id: str = "acme", name: str = "Acme Landscaping") -> None:
    with Session(engine) as session:
        session.add(Company(company_id=company_id, name=name, timezone="UTC", kind="quickbooks"))
        session.commit()


def customers(
    engine: Engine, company_id: str, refs: Iterable[str], *, active: bool = True, name: str = "Customer"
) -> None:
    records = [
        CustomerRecord(ref=r, display_name=f"{name} {r}", active=active, emails=(f"{r}@example.com",))
        for r in refs
    ]
    with engine.begin() as connection:
        write_customers(connection, company_id, records, import_inactive=False, now=NOW)


def invoice(
    ref: str,
    customer_ref: str,
    total: str,
    balance: str | None = None,
    *,
    issued: date | None = date(2026, 10, 1),
    due: date | None = date(2026, 10, 31),
    sent: bool = True,
    voided: bool = False,
) -> InvoiceRecord:
    return InvoiceRecord(
        ref=ref, customer_ref=customer_ref, doc_number=f"INV-{ref}", issue_date=issued, due_date=due,
        currency="USD", total=D(total), balance=D(total if balance is None else balance), source_sent=sent,
        voided=voided,
    )  # fmt: skip


def invoices(engine: Engine, company_id: str, records: Sequence[InvoiceRecord]) -> None:
    with engine.begin() as connection:
        write_invoices(connection, company_id, records, now=NOW)


def pay(kind: str, source: str, invoice_ref: str, amount: str, on: date | None = None) -> AllocationRecord:
    return AllocationRecord(kind, source, invoice_ref, D(amount), on)  # type: ignore[arg-type]


def payment(
    ref: str, customer_ref: str, amount: str, *allocations: AllocationRecord, on=date(2026, 10, 15), **kw
) -> PaymentRecord:
    applied = sum((a.amount for a in allocations if a.source_kind == "payment"), D(0))
    return PaymentRecord(
        ref=ref, customer_ref=customer_ref, paid_on=on, currency="USD", amount=D(amount),
        unapplied=D(amount) - applied, reference=f"CHK-{ref}", allocations=allocations, **kw,
    )  # fmt: skip


def credit(
    ref: str, customer_ref: str, total: str, remaining: str, *allocations, on=date(2026, 10, 10), **kw
) -> CreditRecord:
    return CreditRecord(
        ref=ref, customer_ref=customer_ref, doc_number=f"CN-{ref}", issue_date=on, currency="USD",
        total=D(total), remaining=D(remaining), allocations=allocations, **kw,
    )  # fmt: skip


def payments(engine: Engine, company_id: str, records: Sequence[PaymentRecord], run_id=None) -> None:
    with engine.begin() as connection:
        write_payments(connection, company_id, records, now=NOW, run_id=run_id)


def credits(engine: Engine, company_id: str, records: Sequence[CreditRecord], run_id=None) -> None:
    with engine.begin() as connection:
        write_credits(connection, company_id, records, now=NOW, run_id=run_id)
