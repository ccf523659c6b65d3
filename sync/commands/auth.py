"""`arsync auth connect`, `arsync auth set-tokens` and `arsync auth rekey`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from connectors.base import ConnectorError, Tokens
from connectors.oauth import Provider
from connectors.registry import NoProvider, provider_for
from store.credentials import DbCredentials
from sync.auth_flow import AuthFlowError, authorize
from sync.cli import LazyGroup, State, WorkFailed, parse_now, pass_state
from sync.logging import REDACTOR
from sync.settings import token_endpoint_for


@click.group(cls=LazyGroup)
def auth() -> None:
    """OAuth connections to QuickBooks Online and Xero."""


@auth.command("connect")
@click.argument("company")
@click.option("--authorize-url", help="Override the provider's consent page (sandbox, simulator).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Local redirect port (0: any free one)."
)
@click.option("--timeout", type=click.IntRange(1, 3600), default=300, show_default=True)
@click.option("--no-browser", is_flag=True, help="Only print the URL to open.")
@pass_state
def auth_connect(
    state: State, company: str, authorize_url: str | None, port: int, timeout: int, no_browser: bool
) -> None:
    """Authorization-code flow: open the consent page, receive the redirect on 127.0.0.1."""
    state.company_ids((company,))
    state.require_secrets([company])
    config = state.config.company(company)
    connection = config.connection
    provider: Provider | None
    try:
        provider = provider_for(connection.kind)
    except NoProvider as exc:
        if not authorize_url:
            raise click.UsageError(f"{exc}, and give --authorize-url (no consent page known)") from None
        provider = None
    app = state.app()

    def show(url: str) -> None:
        click.echo(f"Open this URL to authorize arsync for {company}:\n{url}", err=False)
        if not no_browser:
            import webbrowser

            webbrowser.open(url)

    try:
        endpoint = token_endpoint_for(config)
        tokens, extra = authorize(
            authorize_url=authorize_url or (provider.authorize_url if provider else ""),
            client_id=connection.client_id,
            scopes=provider.scopes if provider else (),
            endpoint=endpoint,
            show=show,
            now=lambda: parse_now(None),
            port=port,
            timeout=timeout,
        )
    except (AuthFlowError, ConnectorError) as exc:
        raise WorkFailed(str(exc)) from None
    REDACTOR.remember(tokens.access_token, tokens.refresh_token)
    DbCredentials(app.engine, company, app.box).save(tokens)
    click.echo(f"{company}: connected ({_sealed(app)})")
    if extra.get("realmId") and extra["realmId"] != connection.realm_id:
        click.echo(
            f"note: the authorized QuickBooks company is realm {extra['realmId']}; "
            f"set connection.realm_id to it"
        )
    if connection.kind == "xero":
        _show_tenants(tokens.access_token, connection.api_base_url, connection.tenant_id)


def _show_tenants(access_token: str, api_base_url: str, configured: str) -> None:
    """The Xero organisations the consent covers, and whether `connection.tenant_id` is one."""
    from connectors.xero.tenants import connected_tenants

    try:
        tenants = connected_tenants(access_token, api_base_url)
    except ConnectorError as exc:  # the tokens are stored: only the listing is missing
        click.echo(f"note: {exc}; `connection.tenant_id` must name one of the organisations you authorized")
        return
    click.echo("Xero organisations this connection may read:")
    for tenant in tenants:
        mark = "  (connection.tenant_id)" if tenant.tenant_id == configured else ""
        click.echo(f"  {tenant.tenant_id}  {tenant.name}{mark}")
    if configured not in {tenant.tenant_id for tenant in tenants}:
        click.echo(f"note: connection.tenant_id {configured!r} is not among them; set it to one of these")


def _token(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A token as the provider issued it: never empty, never with spaces or control characters.

    An unset shell variable (`--refresh-token "$REFRESH"`) or a pasted line break replaced the
    working tokens with ones no provider accepts: the connection was lost until a new consent.
    """
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        what = "empty" if not value else "holds spaces or control characters"
        raise click.BadParameter(f"{what}, which no token does; the stored tokens are unchanged")
    return value


def _token_option(name: str, envvar: str):
    """A token given as `name` or, out of other users' sight (`ps` shows arguments), in `envvar`."""
    hidden = "Or from the environment, out of other users' sight (`ps` shows arguments)."
    return click.option(name, required=True, envvar=envvar, show_envvar=True, callback=_token, help=hidden)


@auth.command("set-tokens")
@click.argument("company")
@_token_option("--access-token", "ARSYNC_ACCESS_TOKEN")
@_token_option("--refresh-token", "ARSYNC_REFRESH_TOKEN")
@click.option(
    "--expires-in",
    type=click.IntRange(0, 86400 * 365),
    default=3600,
    show_default=True,
    help="Seconds the access token stays valid.",
)
@click.option(
    "--refresh-expires-in",
    type=click.IntRange(1, 86400 * 3650),
    default=None,
    help="Seconds the refresh token stays valid (QuickBooks: x_refresh_token_expires_in). "
    "Unknown otherwise: the workers' keep-alive refreshes the tokens at its next run to learn it.",
)
@click.option(
    "--now",
    "now",
    metavar="ISO-8601",
    help="Accepted as by every command; tokens expire in real time (as the connectors judge them), "
    "so it does not date them.",
)
@pass_state
def auth_set_tokens(
    state: State,
    company: str,
    access_token: str,
    refresh_token: str,
    expires_in: int,
    refresh_expires_in: int | None,
    now: str | None,
) -> None:
    """Store tokens obtained elsewhere (they are refreshed and rotated from then on)."""
    state.company_ids((company,))
    app = state.app()
    REDACTOR.remember(access_token, refresh_token)
    parse_now(now)  # checked as everywhere (SPEC §6), then not used:
    # tokens live in real time, as the connectors judge them and as a refresh's answer is
    # dated; `--now` replays business time only (an access token dated in a replay's past was
    # refreshed at once, one in its future sent after it had expired).
    at = datetime.now(UTC)
    refresh_expires = at + timedelta(seconds=refresh_expires_in) if refresh_expires_in else None
    DbCredentials(app.engine, company, app.box).save(
        Tokens(access_token, refresh_token, at + timedelta(seconds=expires_in), refresh_expires)
    )
    click.echo(f"{company}: tokens stored ({_sealed(app)})")


def _sealed(app) -> str:
    return (
        "encrypted"
        if app.box.encrypting
        else "NOT encrypted: set ARSYNC_SECRET_KEY to encrypt tokens at rest"
    )


@auth.command("rekey")
@click.option(
    "--dry-run", is_flag=True, help="Say which companies' tokens would be resealed; change nothing."
)
@pass_state
def auth_rekey(state: State, dry_run: bool) -> None:
    """Seal every stored token with the current ARSYNC_SECRET_KEY (a key rotation).

    Start every arsync process with the new key in ARSYNC_SECRET_KEY and the old one in
    ARSYNC_SECRET_KEY_PREVIOUS (comma-separated, if several), run this, then drop the old key.
    Tokens no key opens are left as they are, named (exit 1).
    """
    from store.rekey import Outcome, reseal_all

    app = state.app()
    if not app.box.encrypting:
        raise click.UsageError(
            "set ARSYNC_SECRET_KEY to the key to seal with (and ARSYNC_SECRET_KEY_PREVIOUS to the old one)"
        )
    done = reseal_all(app.engine, app.box, dry_run=dry_run)
    resealed, current = done.companies[Outcome.RESEALED], done.companies[Outcome.CURRENT]
    verb = "would be sealed" if dry_run else "sealed"
    click.echo(
        f"rekey: {len(resealed)} company(ies) {verb} with the current key"
        + (f" ({', '.join(resealed)})" if resealed else "")
        + f", {len(current)} already were"
    )
    left = done.companies[Outcome.UNREADABLE] + done.companies[Outcome.BUSY]
    for company in left:
        click.echo(f"  {company}: left as stored: {done.why[company]}")
    if done.companies[Outcome.UNREADABLE]:
        raise WorkFailed(
            "tokens no key opens stay as they are: start with the key they were stored with in "
            "ARSYNC_SECRET_KEY_PREVIOUS, or store new ones (`arsync auth connect COMPANY`)"
        )
    if done.companies[Outcome.BUSY]:
        raise WorkFailed("run `arsync auth rekey` again for the companies whose tokens kept changing")
