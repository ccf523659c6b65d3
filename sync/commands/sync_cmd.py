"""`arsync sync [COMPANY ...] [--full] [--json]` and `arsync sync --request COMPANY ...`."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from datetime import datetime

import click

from store.glance import live_worker_count
from store.owners import worker_id
from store.schedule import request_sync
from sync.checks import check_kinds
from sync.cli import State, WorkFailed, now_option, parse_now, pass_state
from sync.interrupt import stop_on_interrupt
from sync.runner import sync_now


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
    """Sync now: all configured companies, or the ones named (live progress on a terminal)."""
    if request:
        if full:
            raise click.UsageError("--full cannot be combined with --request")
        _request(state, companies, as_json, parse_now(now))
        return
    wanted = state.company_ids(companies)
    state.require_secrets(wanted)
    # A company named on the command line without its realm or tenant id is the file's mistake
    # (exit 2); with none named, such a company fails alone and the others are synced.
    check_kinds(state.config, wanted, ids=bool(companies))
    app = state.app()
    clock = (lambda: parse_now(now)) if now else (lambda: parse_now(None))
    display = _display(as_json)
    failed = []
    with display or nullcontext(), stop_on_interrupt("the page being committed") as stop:
        for company_id in wanted:
            if stop():  # Ctrl-C: the companies not begun are left to the next sync
                failed.append(f"{company_id} (not begun)")
                continue
            if display:
                display.start(company_id)
            summary = sync_now(
                app.engine,
                app.box,
                state.config.company(company_id),
                owner=worker_id(),
                full=full,
                clock=clock,
                on_page=display.on_page if display else None,
                stop=stop,
            )
            if display:
                display.finish(summary)
            if as_json:
                click.echo(json.dumps(summary.as_json()))
            elif display and sys.stdout.isatty():
                display.echo(summary.describe())
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
    if not live_worker_count(engine):  # heartbeats are on the store's clock, whatever --now says
        click.echo(
            "note: no `arsync run` worker is running; the request waits for one "
            "(or run `arsync sync COMPANY` to sync in this process)",
            err=True,
        )


def _display(as_json: bool):
    """The live display when stderr is a terminal and the output is for people (not --json)."""
    if as_json or not sys.stderr.isatty():
        return None
    from sync.progress import SyncProgress  # rich loads only for a terminal

    return SyncProgress(sys.stderr)
