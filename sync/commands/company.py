"""`arsync company add FILE`, `remove ID [--purge]`, `list [--json]`: companies kept in the store.

A SaaS operator onboards a tenant without redeploying the workers: they read the stored
companies every half minute (SPEC §11). A stored company is validated exactly like one in
the configuration file, and an id may be in only one of the two places.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from store.companies import register_companies
from store.definitions import CompanyExists, add_definitions, remove_definition
from store.runs import stored_books
from store.schedule import ensure_scheduled
from sync.app import company_rows
from sync.cli import LazyGroup, State, pass_state
from sync.companies import load_company_file
from sync.config import ConfigError
from sync.settings import books_of


@click.group(cls=LazyGroup)
def company() -> None:
    """Companies kept in the store (in addition to the configuration file's)."""


@company.command("add")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def company_add(state: State, file: Path) -> None:
    """Add the `[[companies]]` tables of FILE to the store; running workers pick them up."""
    tables = load_company_file(file)
    app = state.app()
    in_file = {c.id for c in app.config.companies}
    for index, (company_id, _) in enumerate(tables.items()):
        if company_id in in_file:
            raise ConfigError(
                f"{file}: companies[{index}].id: company {company_id!r} is already in {state.config_path}"
            )
    kept = stored_books(app.engine, list(tables))
    for index, (company_id, (_, parsed)) in enumerate(tables.items()):
        books = books_of(parsed)
        if company_id in kept and kept[company_id] != books:  # rows kept by `remove` without --purge
            raise ConfigError(
                f"{file}: companies[{index}].connection: company {company_id!r} still holds the rows "
                f"synced from {kept[company_id]} when it was removed, not from {books}: "
                f"`arsync company remove {company_id} --purge` deletes them first"
            )
    now = datetime.now(UTC)
    try:
        add_definitions(app.engine, {cid: raw for cid, (raw, _) in tables.items()}, now=now)
    except CompanyExists as exc:
        raise ConfigError(f"{file}: {exc} (`arsync company remove` it first)") from None
    register_companies(app.engine, company_rows([parsed for _, parsed in tables.values()]))
    ensure_scheduled(app.engine, list(tables), now=now)
    click.echo(f"added {', '.join(tables)}; running workers start syncing within a minute")


@company.command("remove")
@click.argument("company_id", metavar="ID")
@click.option("--purge", is_flag=True, help="Also delete every stored row of the company.")
@pass_state
def company_remove(state: State, company_id: str, purge: bool) -> None:
    """Remove a stored company: no further syncs; its rows stay unless --purge."""
    app = state.app(merged=False)
    configured = next((c for c in app.config.companies if c.id == company_id), None)
    in_file = configured is not None
    if configured is not None and purge:
        # the rows are the file's company's too, unless they were synced from other books
        other = stored_books(app.engine, [company_id]).get(company_id)
        if other is None or other == books_of(configured):
            raise click.BadParameter(
                f"company {company_id!r} is in {state.config_path}: --purge would delete the rows it syncs",
                param_hint="ID",
            )
        remove_definition(app.engine, company_id, purge=True)  # its tokens too: they may be the old books'
        register_companies(app.engine, company_rows([configured]))
        ensure_scheduled(app.engine, [company_id], now=datetime.now(UTC))
        click.echo(
            f"purged {company_id}'s rows synced from {other}; it stays configured in {state.config_path}: "
            f"connect it (`arsync auth connect {company_id}`) and its next sync reads "
            f"{books_of(configured)} from the start"
        )
        return
    revoke_at = None if in_file else datetime.now(UTC)  # the file's company keeps its keys
    removal = remove_definition(app.engine, company_id, purge=purge, revoke_keys_at=revoke_at)
    if removal is None:
        if in_file:
            message = (
                f"company {company_id!r} is in {state.config_path}, not in the store: remove it from the file"
            )
        else:
            message = f"no company {company_id!r} in the store"
        raise click.BadParameter(message, param_hint="ID")
    if in_file:  # it was in both, which every command refused: the file's now stands alone
        click.echo(f"removed {company_id} from the store; it stays configured in {state.config_path}")
        return
    if not removal.stored:  # removed before: only the rows that removal kept were left
        click.echo(f"purged the rows {company_id} kept after it was removed")
        return
    keys = f", its {removal.revoked} portal API key(s) revoked" if removal.revoked else ""
    click.echo(
        f"removed {company_id}" + (" and purged its rows" if purge else f"; its stored rows stay{keys}")
    )


@company.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of companies.")
@pass_state
def company_list(state: State, as_json: bool) -> None:
    """Every company: the configuration file's and the store's."""
    state.read_only = True  # reads only: works on a read-only store or replica
    app = state.app()
    in_file = {c.id for c in app.config.companies}
    rows = [
        {
            "id": c.id,
            "name": c.name,
            "kind": c.connection.kind,
            "source": "file" if c.id in in_file else "store",
            "sync_interval_minutes": c.sync_interval_minutes,
        }
        for c in app.companies()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no companies")
    for row in rows:
        click.echo(f"{row['id']:<20} {row['kind']:<11} {row['source']:<6} {row['name']}")
