"""`arsync sync [COMPANY ...] [--full] [--json]` and `arsync sync --request COMPANY ...`."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from store.schedule import request_sync
from sync.cli import State, WorkFailed, now_option, parse_now, pass_state
from sync.credentials import worker_id
from sync.orchestrator import SyncSummary
from sync.runner import sync_one


@click.command("sync")
@click.argument("companies", nargs=-1)
@click.option("--full", is_flag=True, help="Re-read everything and reconcile deletions.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per company on stdout.")
@click.option(
    "--request",
    "request",
    is_flag=True,
    help="Ask the running workers for the sync instead of running it here.",
)
@now_option
@pass_state
def sync_command(
    state: State, companies: tuple[str, ...], full: bool, as_json: bool, request: bool, now: str | None
) -> None:
    """Sync now: all configured companies, or the ones named."""
    if request:
        if full:
            raise click.UsageError("--full cannot be combined with --request")
        _request(state, companies, as_json, parse_now(now))
        return
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


def _request(state: State, companies: tuple[str, ...], as_json: bool, now: datetime) -> None:
    """Record a sync request per company; a worker starts it within seconds (SPEC §11)."""
    engine = state.app().engine
    for company_id in state.company_ids(companies):
        recorded = request_sync(engine, company_id, now=now, reason="arsync sync --request")
        if as_json:
            click.echo(json.dumps({"company": company_id, "requested": True, "coalesced": not recorded}))
        else:
            click.echo(f"{company_id}: sync requested" + ("" if recorded else " (joins the pending request)"))


def _progress(summary: SyncSummary) -> None:
    click.echo(
        f"\r{summary.company}: {summary.customers} customers, {summary.invoices} invoices, "
        f"{summary.api_calls} API calls",
        nl=False,
        err=True,
    )
