"""`arsync status` and `arsync history`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click

from store.glance import company_glance, live_worker_count
from store.holds import held_for
from store.owners import owner_is_dead
from sync.cli import State, now_option, parse_now, pass_state
from sync.token_health import RECONNECT_NEEDED, token_health

NO_WORKER = "no `arsync run` worker is running to start it"
NO_WORKER_TO_SEND = "no `arsync run` worker is running to issue and send them"
REQUESTS_OVERDUE = timedelta(minutes=2)
REQUESTS_FAILING = (
    "the workers have tried and not issued them: their log's `daemon.requested_invitations_failed`"
    " says why (a broken invitation template, say)"
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _json_run(run: dict) -> dict:
    """A sync run for `history --json`: times in ISO 8601, as `status --json` prints them."""
    return {key: _iso(value) if isinstance(value, datetime) else value for key, value in run.items()}


def company_status(state: State, company_id: str, *, workers: int, now: datetime) -> dict:
    """What `status` says of one company at `now`; `workers`: how many `arsync run` workers
    are alive."""
    app = state.app()
    company = state.config.company(company_id)
    seen = company_glance(app.engine, company_id)
    run, success, plan = seen["last_run"], seen["last_success"], seen["schedule"] or {}
    connection = seen["connection"] or {
        "status": "not_connected",
        "status_detail": None,
        "blocked_until": None,
    }
    health, health_detail = token_health(
        company_id, connection, app.box, now, workers=workers, last_error=run["error"] if run else None
    )
    next_sync = plan.get("next_due_at") or (
        success + timedelta(minutes=company.sync_interval_minutes) if success else None
    )
    blocked = connection["blocked_until"]
    if blocked and (next_sync is None or blocked > next_sync):
        next_sync = blocked
    if connection["status"] == RECONNECT_NEEDED and not plan.get("claimed_by"):
        upcoming = _waits_for_tokens(company_id)  # every sync is turned away (`why_blocked`)
    else:
        upcoming = _next_sync(plan, next_sync, success, workers, seen["store_now"], now)
    return {
        "company": company_id,
        "kind": company.connection.kind,
        "last_sync": _iso(run["started_at"]) if run else None,
        "last_sync_status": run["status"] if run else None,
        "last_sync_error": run["error"] if run else None,
        "last_success": _iso(success),
        "next_sync": upcoming,
        "last_worker": plan.get("last_worker"),
        "connection": health,
        "connection_detail": health_detail,
        "outbox": seen["outbox"],
        "requested_invitations": _requested(
            seen["requested_invites"], seen["requests_job"], workers, now, seen["store_now"]
        ),
        "deletions_unseen_since": seen["deletions_unseen_since"],
        "quarantined": _quarantine(seen["quarantined"]),
        "in_doubt": [
            {
                "id": e["id"],
                "recipient": e["recipient"],
                "subject": e["subject"],
                "claimed_at": _iso(e["claimed_at"]),
            }
            for e in seen["needing_admin"]
            if e["status"] == "in_doubt"
        ],
        "retrying": _retrying(seen["retrying"]),
        "failed": [
            {"id": e["id"], "recipient": e["recipient"], "subject": e["subject"], "error": e["last_error"]}
            for e in seen["needing_admin"]
            if e["status"] == "failed"
        ],
    }


def _retrying(seen: dict | None) -> dict | None:
    """Mail the server has not taken yet and that is tried again (a server down, or one that
    answered "later"): how many, the next try, and the newest one's error; None if none."""
    if seen is None:
        return None
    return {"count": seen["n"], "next_try": _iso(seen["next_try"]), "error": seen["error"]}


def _quarantine(seen: dict | None) -> dict | None:
    """Records the books hold that no sync could read since (`store.quarantine`): how many
    per entity, and the newest with why; None when there are none."""
    if seen is None:
        return None
    records = [record | {"since": _iso(record["since"])} for record in seen["records"]]
    return {"count": sum(seen["counts"].values()), "by_entity": seen["counts"], "records": records}


def _requested(
    waiting: dict, job: dict | None, workers: int, now: datetime, store_now: datetime
) -> dict | None:
    """Invitations portal requests decided on that no worker has issued yet: how many, since
    when; None when there are none. A worker's `requested` job issues them when it starts (at
    once after a request, and every minute): still waiting after `REQUESTS_OVERDUE` although
    the job has started and ended since, issuing them failed. The job's claim expires on the
    store's clock (`store_now`)."""
    if not waiting["n"]:
        return None
    oldest = waiting["oldest"]
    if not workers:
        detail = NO_WORKER_TO_SEND
    elif job and job["claimed_by"] and job["claimed_until"] >= store_now:
        since = _iso(job["last_run_at"])
        detail = f"a worker is issuing requested invitations (since {since}); its next run takes these"
    elif now - oldest > REQUESTS_OVERDUE and job and (job["last_run_at"] or oldest) > oldest:
        detail = REQUESTS_FAILING
    else:
        detail = "a worker issues and sends them at once"
    return {"count": waiting["n"], "since": _iso(oldest), "detail": detail}


def _waits_for_tokens(company_id: str) -> str:
    """The next sync of a connection whose refresh token was refused: none until new tokens."""
    return f"none until new tokens are stored: `arsync auth connect {company_id}` (or `auth set-tokens`)"


def _next_sync(
    plan: dict,
    next_sync: datetime | None,
    success: datetime | None,
    workers: int,
    store_now: datetime,
    now: datetime,
) -> str | None:
    """When the workers sync the company next: running, requested, or its due time; a due
    time already past at `now` is "due now". A request or a due time no live worker will act
    on says so. A claim's expiry is on the store's clock (`store_now`)."""
    if plan.get("claimed_by"):
        owner, exited = plan["claimed_by"], owner_is_dead(plan["claimed_by"])
        if plan["claimed_until"] >= store_now and not exited:
            return f"running now on {owner}"
        # its worker stopped renewing the claim (killed, lost): the run is unfinished
        ended = "exited" if exited else f"its claim expired at {_iso(plan['claimed_until'])}"
        gone = f"interrupted on {owner} ({ended})"
        before = plan.get("abandoned_runs") or 0
        resumes = plan["claimed_until"] + held_for(before)
        if before and resumes > store_now:  # its syncs keep dying with their workers: held back
            gone = f"{gone}, {before + 1} runs in a row not finished: held until {_iso(resumes)}"
        return f"{gone}: another worker resumes it" if workers else f"{gone}; {NO_WORKER}"
    if plan.get("requested_at"):
        return "requested (a worker starts it within seconds)" if workers else f"requested; {NO_WORKER}"
    finished = plan.get("last_finished_at")
    if next_sync is not None and (next_sync <= now or (finished is not None and next_sync < finished)):
        # e.g. no worker ran since, or a manual `arsync sync` that failed left a past due time
        since = f"due now (since {_iso(next_sync)})"
        return f"{since}: a worker syncs it at its next check" if workers else f"{since}; {NO_WORKER}"
    if plan or success:
        return _iso(next_sync)
    return "at the next run"


def _workers(state: State, as_json: bool) -> None:
    """`status --workers`: the live workers, what each runs now."""
    from store.workers import live_workers

    rows = [
        {
            "worker": w["worker"],
            "host": w["host"],
            "pid": w["pid"],
            "started_at": _iso(w["started_at"]),
            "heartbeat_at": _iso(w["heartbeat_at"]),
            "concurrency": w["concurrency"],
            "running": w["running"],
        }
        for w in live_workers(state.app().engine)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no live workers")
    for row in rows:
        running = ", ".join(row["running"]) or "idle"
        load = f"{len(row['running'])}/{row['concurrency']}"
        click.echo(f"{row['worker']}  since {row['started_at']}  running {load}: {running}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array: of the companies (or the workers).")
@click.option(
    "--workers", "workers", is_flag=True, help="The live `arsync run` workers instead of companies."
)
@now_option
@pass_state
def status(state: State, as_json: bool, workers: bool, now: str | None) -> None:
    """Per company: last and next sync, connection health, outbox counts (or: the live workers)."""
    state.read_only = True
    at = parse_now(now)  # a bad --now is bad usage before anything is read
    if workers:
        _workers(state, as_json)
        return
    companies = state.company_ids(())
    workers = live_worker_count(state.app().engine) if companies else 0
    rows = [company_status(state, company_id, workers=workers, now=at) for company_id in companies]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no companies configured in {state.config_path}")
    for row in rows:
        click.echo(f"{row['company']} ({row['kind']})")
        last = f"{row['last_sync']} [{row['last_sync_status']}]" if row["last_sync"] else "never"
        click.echo(f"  last sync:   {last}")
        if row["last_sync"] and row["last_sync_status"] != "ok":  # how old the data is, then
            click.echo(f"  last success: {row['last_success'] or 'never'}")
        if row["last_sync_error"]:
            click.echo(f"  last error:  {row['last_sync_error']}")
        click.echo(f"  next sync:   {row['next_sync']}")
        if row["last_worker"]:
            click.echo(f"  last worker: {row['last_worker']}")
        detail = f" ({row['connection_detail']})" if row["connection_detail"] else ""
        click.echo(f"  connection:  {row['connection']}{detail}")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(row["outbox"].items())) or "empty"
        click.echo(f"  outbox:      {counts}")
        if retrying := row["retrying"]:
            click.echo(
                f"  RETRYING:    {retrying['count']} message(s) not taken by the mail server yet, "
                f"next try from {retrying['next_try']}: {retrying['error']}"
            )
        if waiting := row["requested_invitations"]:
            click.echo(
                f"  requested:   {waiting['count']} invitation(s) asked for in the portal since "
                f"{waiting['since']}, not yet issued: {waiting['detail']}"
            )
        if since := row["deletions_unseen_since"]:
            click.echo(
                f"  DELETIONS:   records deleted in the books since {since} may still show (a sync "
                "after a gap past the API's change window cannot see them) until the next sync, "
                f"which reads everything; at once: `arsync sync --full {row['company']}`"
            )
        if quarantined := row["quarantined"]:
            _echo_quarantine(quarantined)
        for doubt in row["in_doubt"]:
            click.echo(
                f"  IN DOUBT:    message {doubt['id']} to {doubt['recipient']} "
                f"({doubt['subject']}): check with the recipient, then "
                f"`arsync mail resend|drop {row['company']} {doubt['id']}`"
            )
        for failed in row["failed"]:
            click.echo(f"  FAILED:      message {failed['id']} to {failed['recipient']}: {failed['error']}")


def _echo_quarantine(quarantined: dict) -> None:
    kinds = ", ".join(f"{entity} {n}" for entity, n in quarantined["by_entity"].items())
    click.echo(
        f"  QUARANTINED: {quarantined['count']} record(s) in the books could not be read ({kinds}); "
        "a stored row stays as last read and its reminders are held until a sync reads the record:"
    )
    for record in quarantined["records"]:
        ref = record["ref"] if record["ref"] is not None else "(no id)"
        known = f" ({record['known_as']})" if record["known_as"] else ""
        click.echo(f"    {record['entity']} {ref}{known} since {record['since']}: {record['reason']}")
    if (more := quarantined["count"] - len(quarantined["records"])) > 0:
        click.echo(f"    and {more} more: `arsync status --json`")


@click.command()
@click.argument("company", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@pass_state
def history(state: State, company: str | None, as_json: bool, limit: int) -> None:
    """Sync history, newest first."""
    state.read_only = True  # reads only: works on a read-only store or replica
    if company:
        state.company_ids((company,))
    from store import reports

    runs = reports.sync_runs(state.app().engine, company, limit)
    if as_json:
        click.echo(json.dumps([_json_run(run) for run in runs], indent=2))
        return
    if not runs:
        click.echo("no sync runs yet")
    for run in runs:
        took = (run["finished_at"] - run["started_at"]).total_seconds() if run["finished_at"] else None
        click.echo(
            f"{run['started_at']:%Y-%m-%d %H:%M:%S} {run['company_id']:<16} {run['status']:<11} "
            f"{'full' if run['full'] else 'incr'} customers={run['customers']} invoices={run['invoices']} "
            f"payments={run['payments']} credits={run['credits']} "
            f"adjustments={run['adjustments']} api_calls={run['api_calls']}"
            + (f" quarantined={run['quarantined']}" if run["quarantined"] else "")
            + (f" {took:.1f}s" if took is not None else "")
            + (f" error={run['error']}" if run["error"] else "")
        )
