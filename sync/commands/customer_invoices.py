"""`arsync customer invoices COMPANY REF`: what the portal shows one customer."""

from __future__ import annotations

import click

from portal_rules.balances import company_today
from store import portal as portal_api
from store.portal_customers import customer_names
from sync.cli import State, now_option, parse_now, pass_state


@click.command("invoices")
@click.argument("company")
@click.argument("ref")
@now_option
@pass_state
def customer_invoices(state: State, company: str, ref: str, now: str | None) -> None:
    """The customer's invoices the portal shows, with its balance due and past-due amount."""
    state.read_only = True  # reads only: works on a read-only store or replica
    state.company_ids((company,))
    config = state.config.company(company)
    engine = state.app().engine
    with engine.connect() as connection:
        name = customer_names(connection, company, [ref]).get(ref)
    if name is None:
        raise click.BadParameter(f"company {company!r} has no customer {ref!r}", param_hint="REF")
    today = company_today(parse_now(now), config.timezone)
    invoices = portal_api.visible_invoices(engine, company, ref)
    click.echo(f"{company} customer {ref}: {name}")
    for invoice in invoices:
        late = invoice.balance > 0 and invoice.due_date is not None and invoice.due_date < today
        click.echo(
            f"  {invoice.doc_number or invoice.invoice_ref:<12} issued {invoice.issue_date or '-'}  "
            f"due {invoice.due_date or '-'}  total {invoice.total:>12,.2f} {invoice.currency}  "
            f"balance {invoice.balance:>12,.2f} {invoice.currency}" + ("  Past Due" if late else "")
        )
    if not invoices:
        click.echo("  no invoice shown in the portal")
    totals, _, by_currency = portal_api.balances_and_aging(engine, company, ref, today)
    if len(by_currency) > 1:  # a Xero contact billed in several: a sum over them means nothing
        for each in by_currency:
            found = each.balances
            click.echo(
                f"  balance due {found.balance_due:,.2f} {each.currency}, "
                f"past due {found.past_due_amount:,.2f} {each.currency} (as of {today})"
            )
        return
    click.echo(
        f"  balance due {totals.balance_due:,.2f}, past due {totals.past_due_amount:,.2f} (as of {today})"
    )
