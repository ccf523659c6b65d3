"""Read-only summaries for `arsync history` and the demo (`arsync status` reads `store.glance`)."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import Engine, func, select

from portal_rules.balances import balance_due, past_due_amount
from portal_rules.visibility import hidden_reason
from store.facts import invoice_facts
from store.tables import Adjustment, Contact, Customer, Invoice, SyncRun


def sync_runs(engine: Engine, company_id: str | None = None, limit: int = 50) -> list[dict]:
    """The sync runs begun last first (not the ones dated latest: `--now` dates a run), as plain dicts."""
    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if company_id:
        query = query.where(SyncRun.company_id == company_id)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [dict(row) for row in rows]


def portal_overview(engine: Engine, company_id: str, today: date) -> dict:
    """What the portal shows for a company on `today`: the demo's and an admin's summary."""
    with engine.connect() as connection:
        customers = {
            row.ref: row
            for row in connection.execute(select(Customer).where(Customer.company_id == company_id))
        }
        invoices = connection.execute(select(Invoice).where(Invoice.company_id == company_id)).all()
        statuses = Counter(
            connection.execute(
                select(Contact.portal_status).where(
                    Contact.company_id == company_id, Contact.in_source.is_(True)
                )
            ).scalars()
        )
        eligible = connection.scalar(
            select(func.count()).where(Contact.company_id == company_id, Contact.eligible.is_(True))
        )
        adjustments = connection.execute(
            select(func.coalesce(Invoice.doc_number, Adjustment.invoice_ref), Adjustment.amount)
            .join(
                Invoice,
                (Invoice.company_id == Adjustment.company_id) & (Invoice.ref == Adjustment.invoice_ref),
            )
            .where(Adjustment.company_id == company_id)
            .order_by(Adjustment.id)
        ).all()
    hidden: Counter[str] = Counter()
    facts_by_customer: dict[str, list] = {}
    for row in invoices:
        facts = invoice_facts(row._mapping)
        customer = customers.get(row.customer_ref)
        reason = hidden_reason(facts, bool(customer and customer.portal_visible))
        if reason:
            hidden[reason if customer else "customer not imported"] += 1
        facts_by_customer.setdefault(row.customer_ref, []).append(facts)
    shown = [c for c in customers.values() if c.portal_visible]
    due = sum((balance_due(facts_by_customer.get(c.ref, [])) for c in shown), start=balance_due([]))
    past = sum(
        (past_due_amount(facts_by_customer.get(c.ref, []), today) for c in shown), start=balance_due([])
    )
    return {
        "customers": len(customers),
        "customers_in_portal": len(shown),
        "customers_inactive": sum(1 for c in customers.values() if not c.active),
        "invoices": len(invoices),
        "invoices_visible": len(invoices) - sum(hidden.values()),
        "hidden": dict(hidden),
        "balance_due": due,
        "past_due": past,
        "customers_past_due": sum(
            1 for c in shown if past_due_amount(facts_by_customer.get(c.ref, []), today) > 0
        ),
        "adjustments": [(ref, amount) for ref, amount in adjustments],
        "portal_statuses": dict(statuses),
        "eligible_contacts": eligible,
    }
