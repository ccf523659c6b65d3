"""`arsync demo`."""

from __future__ import annotations

from pathlib import Path

import click

from sync.cli import WorkFailed, now_option, parse_now
from sync.demo import run_demo


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("arsync-demo"),
    show_default=True,
    help="Where the demo writes its config, store and mail.",
)
@click.option("--verbose", is_flag=True, help="Log every step (debug level, JSON) on stderr.")
@now_option
def demo(directory: Path, verbose: bool, now: str | None) -> None:
    """The whole job on a fresh machine: simulators -> sync -> rules -> invitations and reminders -> mail."""
    if run_demo(directory, click.echo, parse_now(now), log_level="debug" if verbose else None) != 0:
        raise WorkFailed("the demo's syncs did not all succeed (see above)")
