"""The demo's account-history part: payments, credits, one customer's statement and its PDF."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from mailer.statement_doc import load_document
from mailer.statement_pdf import money, render_pdf, write_private
from portal_rules.balances import company_today
from store.history.reads import overview
from sync.app import App

Echo = Callable[[str], None]
SHOWN_LINES = 8


def show_account_history(app: App, echo: Echo, now: datetime, directory: Path) -> Path | None:
    """Print each company's payments and credits and one statement; write that statement as a PDF
    next to the outbox. Returns the PDF's path (None when no customer has a settled invoice)."""
    echo("\naccount history")
    written = None
    for company in app.config.companies:
        seen = overview(app.engine, company.id)
        echo(
            f"  {company.id:<7} {seen.payments} payments, {seen.credits} credit notes "
            f"({money(seen.unapplied_credit)} not yet applied)"
        )
        if seen.busiest_customer is None or written is not None:
            continue
        today = company_today(now, company.timezone)
        document = load_document(app.engine, company.id, company.name, seen.busiest_customer, day=today)
        if document is None:
            continue
        lines = document.statement.lines
        echo(f"  statement of {document.customer_name} ({company.id} {document.customer_ref}):")
        for line in lines[-SHOWN_LINES:]:
            when = line.entry_date.isoformat() if line.entry_date else "-"
            amounts = f"{money(line.amount):>12} {money(line.running_balance):>12}"
            echo(f"    {when}  {line.kind:<8} {line.ref:<12} {amounts}")
        echo(f"    closing balance {money(document.statement.closing_balance)} ({len(lines)} lines)")
        written = directory / f"statement-{company.id}-{document.customer_ref}.pdf"
        write_private(written, render_pdf(document))
        echo(f"  PDF statement written to {written}")
    return written
