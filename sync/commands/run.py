"""`arsync run`: the daemon."""

from __future__ import annotations

import sys

import click

from sync.checks import check_kinds, check_template_dirs
from sync.cli import State, pass_state
from sync.daemon import Daemon
from sync.logging import configure_logging


@click.command()
@click.option(
    "--time-scale",
    type=click.FloatRange(1, 100000),
    default=1.0,
    hidden=True,
    help="Divide every interval by this factor (tests and demos only).",
)
@pass_state
def run(state: State, time_scale: float) -> None:
    """The daemon: scheduled syncs, reminders, mail dispatch, token keep-alive. Stops on SIGTERM/SIGINT."""
    config = state.config
    state.require_secrets(smtp=True)
    check_template_dirs(config)  # a typo in a folder is exit 2 now, not a failure every minute
    check_kinds(config)  # nor one in a connection's kind, a failed sync every interval
    if not sys.stderr.isatty():
        configure_logging(config.log.level, "json")  # daemons log JSON under systemd and containers
    Daemon(state.app(), time_scale=time_scale).run_until_stopped()
