"""`arsync portal api-key create|list|revoke`: the portal API's per-company keys."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from store import api_keys
from sync.cli import LazyGroup, State, pass_state


@click.group("api-key", cls=LazyGroup)
def api_key() -> None:
    """Keys for the portal API (`arsync serve`): each reaches one company only."""


@api_key.command("create")
@click.argument("company")
@pass_state
def api_key_create(state: State, company: str) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only hashed."""
    state.company_ids((company,))
    key_id, key = api_keys.create_key(state.app().engine, company, now=datetime.now(UTC))
    click.echo(f"{company}: API key {key_id} created; it is shown only now:")
    click.echo(key)


@api_key.command("list")
@click.argument("company")
@pass_state
def api_key_list(state: State, company: str) -> None:
    """The company's live keys: ids and creation times, never a key."""
    state.company_ids((company,))
    keys = api_keys.list_keys(state.app().engine, company)
    if not keys:
        click.echo(f"{company}: no API keys")
    for key in keys:
        click.echo(f"{key.key_id}  created {key.created_at.isoformat(timespec='seconds')}")


@api_key.command("revoke")
@click.argument("company")
@click.argument("key_id")
@pass_state
def api_key_revoke(state: State, company: str, key_id: str) -> None:
    """Revoke a key: from now on it answers 401."""
    state.company_ids((company,))
    if not api_keys.revoke_key(state.app().engine, company, key_id, now=datetime.now(UTC)):
        raise click.BadParameter(f"{company} has no live API key {key_id!r}", param_hint="KEY_ID")
    click.echo(f"{company}: API key {key_id} revoked")
