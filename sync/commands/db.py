"""`arsync db upgrade`."""

from __future__ import annotations

import click

from store.db import upgrade
from sync.cli import LazyGroup, State, pass_state


@click.group(cls=LazyGroup)
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Create the schema, or migrate it to this version of arsync."""
    app = state.app(migrated=False)
    before, after = upgrade(app.engine)
    if before == after:
        click.echo(f"schema already at revision {after}")
    else:
        click.echo(f"schema upgraded from {before or 'nothing'} to revision {after}")
