"""Small builders for the rules' facts, so each table row states only what it is about."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from portal_rules.types import ContactFacts, CustomerFacts, InvoiceFacts, PortalAccount, PortalStatus


def utc(iso: str) -> datetime:
    """An aware UTC datetime from "YYYY-MM-DDTHH:MM[:SS]"."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


def day(iso: str) -> date:
    return date.fromisoformat(iso)


def invoice(
    ref: str = "I1",
    customer_ref: str = "C1",
    balance: str = "100.00",
    *,
    total: str | None = None,
    due: str | None = "2026-06-01",
    sent: bool = True,
    override: bool | None = None,
    voided: bool = False,
    deleted: bool = False,
    draft: bool = False,
    doc_number: str | None = None,
) -> InvoiceFacts:
    return InvoiceFacts(
        ref=ref,
        customer_ref=customer_ref,
        balance=Decimal(balance),
        total=Decimal(total if total is not None else balance),
        due_date=day(due) if due else None,
        doc_number=doc_number,
        source_sent=sent,
        sent_override=override,
        voided=voided,
        deleted=deleted,
        draft=draft,
    )


def customer(
    ref: str = "C1", *, active: bool = True, deleted: bool = False, paused: bool = False
) -> CustomerFacts:
    return CustomerFacts(ref=ref, active=active, deleted=deleted, reminders_paused=paused)


def contact(
    customer_ref: str = "C1",
    email: str = "ann@example.com",
    *,
    position: int = 0,
    status: PortalStatus = PortalStatus.NOT_INVITED,
    admin_enabled: bool | None = None,
    in_source: bool = True,
) -> ContactFacts:
    return ContactFacts(
        customer_ref=customer_ref,
        email=email,
        position=position,
        in_source=in_source,
        portal_status=status,
        admin_enabled=admin_enabled,
    )


def account(
    customer_ref: str = "C1",
    email: str = "ann@example.com",
    status: PortalStatus = PortalStatus.NOT_INVITED,
    eligible: bool = True,
) -> PortalAccount:
    return PortalAccount(customer_ref=customer_ref, email=email, status=status, eligible=eligible)
