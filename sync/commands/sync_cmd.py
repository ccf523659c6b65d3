"""`arsync sync [COMPANY ...] [--full] [--json]`."""

from __future__ import annotations

import json
import sys

import click

from sync.cli import State, WorkFailed, now_option, parse_now, pass_state
from sync.credentials import worker_id
from sync.orchestrator import SyncSummary
from sync.runner import sync_one


@click.command("sync")
@click.argument("companies", nargs=-1)
@click.option("--full", is_flag=True, help="Re-read everything and reconcile deletions.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per company on stdout.")
@now_option
@pass_state
def sync_command(
    state: State, companies: tuple[str, ...], full: bool, as_json: bool, now: str | None
) -> None:
    """Sync now: all configured companies, or the ones named."""
    app = state.app()
    clock = (lambda: parse_now(now)) if now else (lambda: parse_now(None))
    progress = sys.stderr.isatty() and not as_json
    failed = []
    for company_id in state.company_ids(companies):
        summary = sync_one(
            app.engine,
            app.box,
            state.config.company(company_id),
            owner=worker_id(),
            full=full,
            clock=clock,
            on_page=_progress if progress else None,
        )
        if progress:
            click.echo("", err=True)
        if as_json:
            click.echo(json.dumps(summary.as_json()))
        else:
            click.echo(summary.describe())
        if summary.status != "ok":
            failed.append(f"{company_id} ({summary.status})")
    if failed:
        raise WorkFailed(f"not synced: {', '.join(failed)}; see `arsync status`")


def _progress(summary: SyncSummary) -> None:
    click.echo(
        f"\r{summary.company}: {summary.customers} customers, {summary.invoices} invoices, "
        f"{summary.api_calls} API calls",
        nl=False,
        err=True,
    )
