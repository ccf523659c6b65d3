"""Commands whose capability lands in a later issue: their shape is final, their body says so.

Each one exits 1 with a clear message instead of pretending to work. They move to their
own modules as they are implemented.
"""

from __future__ import annotations

import click

from sync.cli import NotYetAvailable, cli, now_option


@cli.group()
def auth() -> None:
    """OAuth connections to QuickBooks Online and Xero."""


@auth.command("connect")
@click.argument("company")
def auth_connect(company: str) -> None:
    """Authorization-code flow with a local redirect."""
    raise NotYetAvailable("arsync auth connect")


@auth.command("set-tokens")
@click.argument("company")
@click.option("--access-token", required=True)
@click.option("--refresh-token", required=True)
@click.option("--expires-in", type=int, default=3600, show_default=True)
def auth_set_tokens(company: str, access_token: str, refresh_token: str, expires_in: int) -> None:
    """Store tokens obtained elsewhere."""
    raise NotYetAvailable("arsync auth set-tokens")


@cli.command("sync")
@click.argument("companies", nargs=-1)
@click.option("--full", is_flag=True, help="Re-read everything and reconcile deletions.")
@click.option("--json", "as_json", is_flag=True)
@now_option
def sync_command(companies: tuple[str, ...], full: bool, as_json: bool, now: str | None) -> None:
    """Sync now."""
    raise NotYetAvailable("arsync sync")


@cli.command()
def run() -> None:
    """The daemon: scheduled syncs, reminders, mail dispatch, token keep-alive."""
    raise NotYetAvailable("arsync run")


@cli.command()
@click.argument("company")
@click.option("--customer", "customer_ref")
@click.option("--email")
@click.option("--all-eligible", is_flag=True)
@now_option
def invite(
    company: str, customer_ref: str | None, email: str | None, all_eligible: bool, now: str | None
) -> None:
    """Manual portal invitations, sent at once."""
    raise NotYetAvailable("arsync invite")


@cli.group()
def portal() -> None:
    """Portal access: contact switches, conflicts, and the portal's own calls."""


for _name in ("enable", "disable"):

    @portal.command(_name)
    @click.argument("company")
    @click.option("--customer", "customer_ref", required=True)
    @click.option("--email", required=True)
    def _switch(company: str, customer_ref: str, email: str, _name: str = _name) -> None:
        """Contact-level portal switch."""
        raise NotYetAvailable(f"arsync portal {_name}")


@portal.command("conflicts")
@click.argument("company")
def portal_conflicts(company: str) -> None:
    """Emails shared by several customers where only one may be enabled."""
    raise NotYetAvailable("arsync portal conflicts")


@portal.command("request-access")
@click.argument("company")
@click.argument("email")
@now_option
def portal_request_access(company: str, email: str, now: str | None) -> None:
    """The portal's request-access call."""
    raise NotYetAvailable("arsync portal request-access")


@portal.command("accept")
@click.argument("company")
@click.argument("token")
@now_option
def portal_accept(company: str, token: str, now: str | None) -> None:
    """Accept an invitation token."""
    raise NotYetAvailable("arsync portal accept")


@cli.group()
def invoice() -> None:
    """Local invoice overrides."""


for _name in ("mark-sent", "mark-unsent"):

    @invoice.command(_name)
    @click.argument("company")
    @click.argument("invoice_ref")
    def _mark(company: str, invoice_ref: str, _name: str = _name) -> None:
        """Local sent override."""
        raise NotYetAvailable(f"arsync invoice {_name}")


@cli.group()
def customer() -> None:
    """Per-customer switches."""


for _name in ("pause-reminders", "resume-reminders"):

    @customer.command(_name)
    @click.argument("company")
    @click.argument("ref")
    def _pause(company: str, ref: str, _name: str = _name) -> None:
        """Per-customer reminder switch."""
        raise NotYetAvailable(f"arsync customer {_name}")


@cli.group()
def reminders() -> None:
    """Invoice reminders."""


@reminders.command("plan")
@click.option("--dry-run", is_flag=True)
@now_option
def reminders_plan(dry_run: bool, now: str | None) -> None:
    """Enqueue the reminders due now."""
    raise NotYetAvailable("arsync reminders plan")


@cli.group()
def mail() -> None:
    """The outbox."""


@mail.command("dispatch")
@click.option("--dry-run", is_flag=True)
@now_option
def mail_dispatch(dry_run: bool, now: str | None) -> None:
    """Deliver the outbox messages whose time (and window) has come."""
    raise NotYetAvailable("arsync mail dispatch")


@cli.command()
def demo() -> None:
    """The whole job on a fresh machine, with the local simulators."""
    raise NotYetAvailable("arsync demo (it arrives with the sync engine)")
