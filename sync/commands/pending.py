"""Commands whose capability lands in a later issue: their shape is final, their body says so.

Each one exits 1 with a clear message instead of pretending to work. They move to their
own modules as they are implemented.
"""

from __future__ import annotations

import click

from sync.cli import NotYetAvailable, cli, now_option


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
def demo() -> None:
    """The whole job on a fresh machine, with the local simulators."""
    raise NotYetAvailable("arsync demo (it arrives with the sync engine)")
