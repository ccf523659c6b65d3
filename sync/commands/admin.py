"""Admin switches: `arsync portal ...`, `arsync invoice ...`, `arsync customer ...`."""

from __future__ import annotations

import click

from store import admin
from store import portal as portal_api
from store.admin import NotFound
from sync.cli import LazyGroup, State, WorkFailed, now_option, parse_now, pass_state
from sync.settings import company_policy


def _company(state: State, company_id: str):
    state.company_ids((company_id,))
    return state.config.company(company_id)


@click.group(cls=LazyGroup)
def portal() -> None:
    """Portal access: contact switches, conflicts, and the portal's own calls."""


@portal.command("enable")
@click.argument("company")
@click.option("--customer", "customer_ref", required=True)
@click.option("--email", required=True)
@pass_state
def portal_enable(state: State, company: str, customer_ref: str, email: str) -> None:
    """Switch a contact's portal access on (it can then be invited)."""
    _switch(state, company, customer_ref, email, enable=True)


@portal.command("disable")
@click.argument("company")
@click.option("--customer", "customer_ref", required=True)
@click.option("--email", required=True)
@pass_state
def portal_disable(state: State, company: str, customer_ref: str, email: str) -> None:
    """Switch a contact's portal access off."""
    _switch(state, company, customer_ref, email, enable=False)


def _switch(state: State, company: str, customer_ref: str, email: str, *, enable: bool) -> None:
    config = _company(state, company)
    try:
        status = admin.switch_contact(
            state.app().engine, company, customer_ref, email, enable=enable, policy=company_policy(config)
        )
    except NotFound as exc:
        raise click.BadParameter(str(exc), param_hint="'--customer' / '--email'") from None
    except ValueError as exc:  # InvalidTransition
        raise WorkFailed(f"cannot {'enable' if enable else 'disable'}: {exc}") from None
    click.echo(f"{company} customer {customer_ref} {email.strip().lower()}: {status}")


@portal.command("conflicts")
@click.argument("company")
@pass_state
def portal_conflicts(state: State, company: str) -> None:
    """Emails shared by several customers where only one may be enabled."""
    state.read_only = True  # reads only: works on a read-only store or replica
    _company(state, company)
    found = admin.conflicts(state.app().engine, company)
    if not found:
        click.echo(f"{company}: no conflicts")
    for email, holders in found.items():
        click.echo(email)
        for ref, status in holders:
            click.echo(f"  customer {ref}: {status}")


@portal.command("accept")
@click.argument("company")
@click.argument("token")
@now_option
@pass_state
def portal_accept(state: State, company: str, token: str, now: str | None) -> None:
    """Accept an invitation token (what the portal does when the link is opened)."""
    config = _company(state, company)
    failure = portal_api.accept_invitation(
        state.app().engine, company, token, policy=company_policy(config), now=parse_now(now)
    )
    if failure:
        raise WorkFailed(failure)
    click.echo("invitation accepted: portal access enabled")


@click.group(cls=LazyGroup)
def invoice() -> None:
    """Local invoice overrides."""


@invoice.command("mark-sent")
@click.argument("company")
@click.argument("invoice_ref")
@now_option
@pass_state
def invoice_mark_sent(state: State, company: str, invoice_ref: str, now: str | None) -> None:
    """Treat the invoice as sent, whatever the accounting system says.

    INVOICE_REF is the invoice's id in the accounting system, or its number."""
    _mark(state, company, invoice_ref, True, now)


@invoice.command("mark-unsent")
@click.argument("company")
@click.argument("invoice_ref")
@now_option
@pass_state
def invoice_mark_unsent(state: State, company: str, invoice_ref: str, now: str | None) -> None:
    """Treat the invoice as unsent (hidden from the portal), whatever the accounting system says.

    INVOICE_REF is the invoice's id in the accounting system, or its number."""
    _mark(state, company, invoice_ref, False, now)


def _mark(state: State, company: str, invoice_ref: str, sent: bool, now: str | None) -> None:
    from sync.runner import recompute_health

    _company(state, company)
    at = parse_now(now)  # a malformed --now refused before anything is marked
    engine = state.app().engine
    try:
        marked = admin.set_sent_override(engine, company, invoice_ref, sent)
    except NotFound as exc:
        raise click.BadParameter(str(exc), param_hint="INVOICE_REF") from None
    # health counts visible invoices: the customer's score follows now, not at the next full sync,
    # and its days past due are counted on `--now`'s day, as a sync at that `--now` counts them
    recompute_health(engine, company, at, {marked.customer_ref})
    hidden = marked.hidden
    shown = "visible in the portal" if hidden is None else f"hidden in the portal ({hidden})"
    named = f"{marked.ref} (number {marked.doc_number})" if marked.doc_number else marked.ref
    click.echo(f"{company} invoice {named}: marked {'sent' if sent else 'unsent'}; {shown}")


@click.group(cls=LazyGroup)
def customer() -> None:
    """Per-customer switches and views."""


@customer.command("pause-reminders")
@click.argument("company")
@click.argument("ref")
@pass_state
def customer_pause(state: State, company: str, ref: str) -> None:
    """Stop reminders to this customer until resumed."""
    _pause(state, company, ref, True)


@customer.command("resume-reminders")
@click.argument("company")
@click.argument("ref")
@pass_state
def customer_resume(state: State, company: str, ref: str) -> None:
    """Send reminders to this customer again."""
    _pause(state, company, ref, False)


def _pause(state: State, company: str, ref: str, paused: bool) -> None:
    _company(state, company)
    try:
        admin.set_reminders_paused(state.app().engine, company, ref, paused)
    except NotFound as exc:
        raise click.BadParameter(str(exc), param_hint="REF") from None
    click.echo(f"{company} customer {ref}: reminders {'paused' if paused else 'resumed'}")
