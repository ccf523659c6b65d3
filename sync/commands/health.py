"""`arsync customer health|set-health|clear-health`: customer health scores (SPEC section 10).

Registered under the `customer` group by path in `sync.cli.COMMANDS`."""

from __future__ import annotations

import getpass
import json

import click

from store import health
from store.admin import NotFound
from sync.cli import State, now_option, parse_now, pass_state

COLUMNS = ("score", "band", "source", "customer", "name", "reasons")


@click.command("health")
@click.argument("company")
@click.argument("ref", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per customer on stdout.")
@pass_state
def customer_health(state: State, company: str, ref: str | None, as_json: bool) -> None:
    """Customer health scores, worst first (all customers in the portal, or REF)."""
    state.read_only = True  # reads only: works on a read-only store or replica
    state.company_ids((company,))
    rows = _known(lambda: health.read(state.app().engine, company, ref))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_json(company)))
        return
    if not rows:
        if ref:
            click.echo(
                f"{company}: no health score for customer {ref} (not in the portal, or not synced yet)"
            )
        else:
            click.echo(f"{company}: no health scores yet (computed at the end of each sync)")
        return
    table = [
        (
            str(r.score) if r.score is not None else "-",
            r.band,
            r.source,
            r.customer_ref,
            r.display_name,
            r.reasons,
        )
        for r in rows
    ]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(COLUMNS[:-1])]
    for row in [tuple(c.upper() for c in COLUMNS), *table]:
        cells = [
            cell.rjust(widths[0]) if i == 0 else cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])
        ]
        click.echo("  ".join([*cells, row[-1]]))


# "-1" is a score out of range, not an unknown option ("No such option: -1")
@click.command("set-health", context_settings={"ignore_unknown_options": True})
@click.argument("company")
@click.argument("ref")
@click.argument("score", type=click.IntRange(0, 100))
@click.option("--note", help="Why (shown with the score).")
@now_option
@pass_state
def customer_set_health(
    state: State, company: str, ref: str, score: int, note: str | None, now: str | None
) -> None:
    """Set the customer's health score by hand (0-100); kept by every later sync until cleared."""
    state.company_ids((company,))
    engine = state.app().engine
    shown = _known(
        lambda: health.set_override(
            engine, company, ref, score, note=note or None, by=_who(), now=parse_now(now)
        )
    )
    click.echo(f"{company} customer {ref}: health {score} (override)")
    if not shown:
        click.echo(
            f"note: customer {ref} is not in the portal now (inactive, or hidden by the company's settings): "
            "no score shows for it until it is back; the override is kept until then",
            err=True,
        )


@click.command("clear-health")
@click.argument("company")
@click.argument("ref")
@pass_state
def customer_clear_health(state: State, company: str, ref: str) -> None:
    """Drop the customer's health override: back to the computed score."""
    state.company_ids((company,))
    cleared = _known(lambda: health.clear_override(state.app().engine, company, ref))
    click.echo(
        f"{company} customer {ref}: " + ("back to the computed score" if cleared else "had no override")
    )


def _known(call):
    """Run `call`; an unknown customer is bad usage (exit 2) naming it."""
    try:
        return call()
    except NotFound as exc:
        raise click.BadParameter(str(exc), param_hint="REF") from None


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (some containers)
        return "unknown"
