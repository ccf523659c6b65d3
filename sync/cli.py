"""The `arsync` command line: a thin layer that parses, configures logging once, and calls one function.

Exit codes: 0 success, 1 the work failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from store.crypto import SecretKeyError
from store.db import StoreNotMigrated
from sync.app import App, default_config_path
from sync.config import Config, ConfigError, load_config
from sync.logging import configure_logging


class WorkFailed(click.ClickException):
    """The command ran but its work failed (exit 1)."""

    exit_code = 1


class State:
    """Per-invocation state: where the config is, and the loaded config/app once asked for."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._app: App | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            configure_logging(self._config.log.level, self._config.log.format)
        return self._config

    def app(self, *, migrated: bool = True) -> App:
        """The opened store; on a migrated one, `config.companies` then also holds the stored companies."""
        if self._app is None:
            self._app = App.open(self.config, migrated=migrated)
            if migrated:
                self._config = self.config.model_copy(update={"companies": self._app.companies()})
        return self._app

    def company_ids(self, given: tuple[str, ...]) -> list[str]:
        self.app()
        known = [c.id for c in self.config.companies]
        for company_id in given:
            if company_id not in known:
                raise click.BadParameter(
                    f"no company {company_id!r} in {self.config_path} (known: {', '.join(known) or 'none'})",
                    param_hint="COMPANY",
                )
        return list(given) or known


pass_state = click.make_pass_decorator(State)


def parse_now(value: str | None) -> datetime:
    """`--now` as an aware UTC datetime (naive values are taken as UTC); default: the clock."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 date-time: {value!r}", param_hint="--now") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


now_option = click.option("--now", "now", metavar="ISO-8601", help="Act as if it were this instant.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default ./arsync.toml or $ARSYNC_CONFIG).",
)
@click.version_option(package_name="arsync")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """arsync: QuickBooks Online and Xero into a portal-ready store, with invitations and reminders."""
    ctx.obj = State(config_path or default_config_path())
    ctx.call_on_close(lambda: ctx.obj._app.close() if ctx.obj._app else None)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: map every known failure to a message and an exit code."""
    from sync import commands  # noqa: F401  (registers the command groups)

    try:
        cli.main(args=argv, prog_name="arsync", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ConfigError as exc:
        click.echo(f"arsync: configuration error: {exc}", err=True)
        return 2
    except (StoreNotMigrated, SecretKeyError) as exc:
        click.echo(f"arsync: {exc}", err=True)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # a bug: one clear line, the traceback only on request
        if os.environ.get("ARSYNC_DEBUG"):
            raise
        click.echo(
            f"arsync: unexpected error: {type(exc).__name__}: {exc} (set ARSYNC_DEBUG=1 for details)",
            err=True,
        )
        return 1
    return 0
