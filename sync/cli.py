"""The `arsync` command line: a thin layer that parses, configures logging once, and calls one function.

Exit codes: 0 success, 1 the work failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import importlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sync.app import App
    from sync.config import Config, ConfigError

CONFIG_ENV = "ARSYNC_CONFIG"

# Every command, by its path under `arsync`: (where it lives, the one line `--help` lists).
# A module is imported only when its command runs or shows its own help, so the SDKs,
# SQLModel tables, jinja2, fastapi... load only in the commands that use them. A new
# command is one module under sync/commands/ and one line here; a sub-command of a group
# (`"customer health"`) is listed under the group's path. See `LazyGroup`.
COMMANDS: dict[str, tuple[str, str]] = {
    "auth": ("sync.commands.auth:auth", "OAuth connections to QuickBooks Online and Xero."),
    "company": ("sync.commands.company:company", "Companies kept in the store (add, remove, list)."),
    "customer": ("sync.commands.admin:customer", "Per-customer switches and views."),
    "customer invoices": (
        "sync.commands.customer_invoices:customer_invoices",
        "The customer's invoices the portal shows, with its balances.",
    ),
    "customer clear-health": (
        "sync.commands.health:customer_clear_health",
        "Back to the computed health score.",
    ),
    "customer health": ("sync.commands.health:customer_health", "Customer health scores, worst first."),
    "customer set-health": (
        "sync.commands.health:customer_set_health",
        "Set a customer's health score by hand.",
    ),
    "db": ("sync.commands.db:db", "The store's schema."),
    "demo": ("sync.commands.demo:demo", "The whole job on a fresh machine, with simulators."),
    "history": ("sync.commands.status:history", "Sync history, newest first."),
    "invite": ("sync.commands.mail:invite", "Manual portal invitations, sent at once."),
    "invoice": ("sync.commands.admin:invoice", "Local invoice overrides."),
    "mail": ("sync.commands.mail:mail", "The outbox."),
    "portal": ("sync.commands.admin:portal", "Portal access: contact switches, conflicts, portal calls."),
    "portal api-key": ("sync.commands.api_keys:api_key", "Keys for the portal API (`arsync serve`)."),
    "portal request-access": (
        "sync.commands.mail:portal_request_access",
        "The portal's request-access call: invites a matching eligible contact at once.",
    ),
    "reminders": ("sync.commands.mail:reminders", "Invoice reminders."),
    "run": ("sync.commands.run:run", "The daemon: scheduled syncs, reminders, mail, token keep-alive."),
    "serve": ("sync.commands.serve:serve", "The HTTP server: portal API, webhooks, health, metrics."),
    "statement": ("sync.commands.statement:statement", "A customer's statement, with aging; as JSON or PDF."),
    "status": ("sync.commands.status:status", "Per company: last and next sync, connection, outbox."),
    "sync": ("sync.commands.sync_cmd:sync_command", "Sync now: all configured companies, or the ones named."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands come from `COMMANDS` and are imported on first use.

    Listing them (`arsync --help`, `arsync portal --help`) reads the summaries from the
    table and imports nothing; running one, or asking for its own help, imports its module.
    Define a group as `@click.group(cls=LazyGroup)` in its module and register it in
    `COMMANDS`; its sub-commands are the entries whose path starts with the group's path,
    plus any added with `@group.command()` in the same module. A new command, e.g.
    `arsync statement COMPANY CUSTOMER`, is a module `sync/commands/statement.py`::

        @click.command()
        @click.argument("company")
        @click.argument("customer")
        @pass_state
        def statement(state: State, company: str, customer: str) -> None:
            ...

    and one line in `COMMANDS`::

        "statement": ("sync.commands.statement:statement", "A customer's statement."),

    A sub-command of an existing group (`arsync customer health`) is the same with the
    path `"customer health"`. Command modules import `sync.cli` for `State`, `pass_state`,
    `WorkFailed`..., never the other way round.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_children(_path(ctx))})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        entry = COMMANDS.get(" ".join((*_path(ctx), cmd_name)))
        if entry is None:
            return None
        if _listing(ctx):
            return _Listed(cmd_name, entry[1])
        return load_command(entry[0])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta["arsync.listing"] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            ctx.meta.pop("arsync.listing", None)


class _Listed(click.Command):
    """A stand-in carrying a command's summary, so listing it needs no import."""

    def __init__(self, name: str, summary: str) -> None:
        super().__init__(name, short_help=summary)


def load_command(target: str) -> click.Command:
    """Import `module:attr` and return the click command it names."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _path(ctx: click.Context) -> tuple[str, ...]:
    names = []
    while ctx.parent is not None:  # the root context's name is the program's
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return tuple(reversed(names))


def _children(path: tuple[str, ...]) -> list[str]:
    depth = len(path)
    return [
        key.split(" ")[depth]
        for key in COMMANDS
        if len(key.split(" ")) == depth + 1 and tuple(key.split(" ")[:depth]) == path
    ]


def _listing(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("arsync.listing"))


class WorkFailed(click.ClickException):
    """The command ran but its work failed (exit 1)."""

    exit_code = 1


class State:
    """Per-invocation state: where the config is, and the loaded config/app once asked for."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._app: App | None = None
        self.read_only = False  # a command that only reads the store (it starts faster)

    @property
    def config(self) -> Config:
        if self._config is None:
            from sync.config import load_config
            from sync.logging import configure_logging

            self._config = load_config(self.config_path, require_secrets=False)
            configure_logging(self._config.log.level, self._config.log.format)
        return self._config

    def require_secrets(
        self, company_ids: list[str] | tuple[str, ...] | None = None, *, smtp: bool = False
    ) -> None:
        """Exit 2 naming the key if a secret this command uses is unset (see `check_secrets`)."""
        from sync.checks import check_secrets

        check_secrets(self.config, company_ids, smtp=smtp)

    def app(self, *, migrated: bool = True, merged: bool = True) -> App:
        """The opened store; on a migrated one, `config.companies` then also holds the stored
        companies, unless not `merged` (`company remove` settles an id both in the file and
        in the store, which merging refuses)."""
        if self._app is None:
            from sync.app import App

            self._app = App.open(self.config, migrated=migrated, register=not self.read_only)
            if migrated and merged:
                companies = self._app.companies()
                in_file = {c.id for c in self.config.companies}
                stored = frozenset(c.id for c in companies if c.id not in in_file)
                self._config = self.config.model_copy(update={"companies": companies, "stored_ids": stored})
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
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise click.BadParameter(f"not an ISO-8601 date-time: {value!r}", param_hint="--now") from None
    if not NOW_YEARS[0] <= parsed.year <= NOW_YEARS[1]:
        # the rules add days and years to it (due dates, windows, expiries): keep them in range
        raise click.BadParameter(
            f"{value!r} is outside the years {NOW_YEARS[0]}-{NOW_YEARS[1]}", param_hint="--now"
        )
    return parsed


NOW_YEARS = (1970, 9000)


now_option = click.option("--now", "now", metavar="ISO-8601", help="Act as if it were this instant.")


def default_config_path() -> Path:
    """`$ARSYNC_CONFIG`, else ./arsync.toml."""
    return Path(os.environ.get(CONFIG_ENV) or "arsync.toml")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    unreadable = _not_utf8(sys.argv[1:] if argv is None else argv)
    if unreadable is not None:
        click.echo(f"arsync: argument {unreadable} is not valid UTF-8", err=True)
        return 2
    try:
        cli.main(args=argv, prog_name="arsync", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:
        known = _known_failure(exc)
        if known is not None:
            click.echo(known[1], err=True)
            return known[0]
        if os.environ.get("ARSYNC_DEBUG"):  # a bug: one clear line, the traceback only on request
            raise
        click.echo(
            f"arsync: unexpected error: {type(exc).__name__}: {_first_line(exc)}"
            " (set ARSYNC_DEBUG=1 for details)",
            err=True,
        )
        return 1
    return 0


def _known_failure(exc: Exception) -> tuple[int, str] | None:
    """(exit code, message) for the failures users cause; None for a bug.

    Imported here, not at the top: their modules load SQLAlchemy and pydantic, which
    `arsync --help` must not wait for (they are loaded anyway when they raised).
    """
    from store.crypto import SecretKeyError
    from store.db import StoreNotMigrated
    from sync.config import ConfigError

    if isinstance(exc, ConfigError):
        return 2, f"arsync: configuration error: {exc}"
    if isinstance(exc, StoreNotMigrated | SecretKeyError):
        return 1, f"arsync: {exc}"
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import DBAPIError, OperationalError

        detail = _first_line(exc.orig or exc) if isinstance(exc, DBAPIError) else ""
        if store_unopenable(exc):
            return 2, f"arsync: configuration error: store.url: cannot open the store: {detail}"
        if isinstance(exc, OperationalError):  # the store itself: unreachable, locked, read-only
            return 1, f"arsync: the store (store.url) failed: {detail}"
    return None


# SQLite's answers for a store path that cannot be a database (a missing folder, another file)
_UNOPENABLE = ("unable to open database file", "file is not a database")


def store_unopenable(exc: BaseException) -> bool:
    """Whether `exc` says the store.url names no place a database can be (a configuration
    error: no migration or restart will open it)."""
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError) and any(c in _first_line(exc.orig or exc) for c in _UNOPENABLE)


def unopenable_store(url: str, exc: BaseException) -> ConfigError | None:
    """The configuration error (exit 2) for a store.url `exc` says no database can be at,
    naming the SQLite file and the likely cause; None for any other failure."""
    if not store_unopenable(exc):
        return None
    from store.db import unopenable_cause
    from sync.config import ConfigError

    detail = _first_line(exc.orig or exc)  # type: ignore[attr-defined]
    return ConfigError(f"store.url: cannot open the store {unopenable_cause(url, detail)}")


def _not_utf8(args: list[str]) -> str | None:
    """The first argument (quoted, its bad bytes escaped) that the shell passed as bytes which
    are not UTF-8 (Python keeps them as surrogates: they could be neither stored nor printed)."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return f"'{arg.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')}'"
    return None


def _first_line(exc: BaseException) -> str:
    """An exception's message without the lines drivers add (the SQL, its parameters, links)."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__
