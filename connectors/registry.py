"""Connector kinds, found through an explicit registry.

Built-in kinds are registered by name; third-party packages add kinds through the
entry-point group `arsync.connectors`, whose objects are factories with the same
signature as the built-ins: `factory(settings: ConnectorSettings, credentials) -> Connector`.

A kind brings its OAuth provider (consent page, token URL, scopes): the built-ins in
`connectors/<kind>/provider.py`, a third-party factory as its `provider` attribute.
`provider_for(kind)` finds it, and `token_endpoint(kind, ...)` builds the token endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from connectors.base import Connector, ConnectorError, CredentialsStore
from connectors.oauth import Provider, TokenEndpoint
from connectors.ratelimit import PacingFactory

ENTRY_POINT_GROUP = "arsync.connectors"
BUILTIN = {
    "quickbooks": "connectors.quickbooks:create",
    "xero": "connectors.xero:create",
}
BUILTIN_PROVIDERS = {
    "quickbooks": "connectors.quickbooks.provider:PROVIDER",
    "xero": "connectors.xero.provider:PROVIDER",
}


@dataclass(frozen=True)
class ConnectorSettings:
    """What a connector needs from the configuration, passed down explicitly."""

    company_id: str
    kind: str
    environment: str = "production"
    realm_id: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    api_base_url: str = ""
    token_url: str = ""
    import_inactive_customers: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # test/bench knobs (page size, limits)
    clock: Callable[[], datetime] | None = None
    # Token lifetimes and the end of a daily API limit are facts of the real world: `arsync
    # sync --now` moves `clock` but must neither judge them by it nor store times computed from
    # it. None: `clock`.
    token_clock: Callable[[], datetime] | None = None
    pacing: PacingFactory | None = None  # a budget shared across processes; None: per client
    stop: Callable[[], bool] | None = None  # polled during waits: true ends them with `Stopped`


Factory = Callable[[ConnectorSettings, CredentialsStore], Connector]


class UnknownConnector(LookupError):
    pass


class NoProvider(ConnectorError):
    """The connector kind brings no OAuth provider (or is unknown): the token URL must be configured."""


def available_kinds() -> list[str]:
    return sorted({*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def factory_for(kind: str) -> Factory:
    """The factory for `kind`: built-in first, then the `arsync.connectors` entry points."""
    if kind in BUILTIN:
        return _load(BUILTIN[kind])
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == kind:
            return entry.load()
    raise UnknownConnector(f"unknown connector kind {kind!r} (available: {', '.join(available_kinds())})")


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def provider_for(kind: str) -> Provider:
    """The OAuth provider `kind` brings: built-in, or the `provider` attribute of its factory."""
    if kind in BUILTIN_PROVIDERS:
        return _load(BUILTIN_PROVIDERS[kind])
    try:
        provider = getattr(factory_for(kind), "provider", None)
    except UnknownConnector as exc:
        raise NoProvider(f"{exc}; no OAuth provider known: set connection.token_url") from None
    if not isinstance(provider, Provider):
        raise NoProvider(
            f"connector kind {kind!r} brings no OAuth provider (its factory has no `provider`): "
            "set connection.token_url"
        )
    return provider


def token_endpoint(kind: str, *, client_id: str, client_secret: str, token_url: str = "") -> TokenEndpoint:
    """The token endpoint of `kind`'s provider, with the configured `token_url` override if any.

    A kind without a provider works when `token_url` is configured (refresh lifetime: as the
    token answer says); without either, `NoProvider` names the kind and `connection.token_url`.
    """
    try:
        provider = provider_for(kind)
    except NoProvider:
        if not token_url:
            raise
        return TokenEndpoint(token_url, client_id, client_secret)
    return provider.endpoint(client_id=client_id, client_secret=client_secret, token_url=token_url)


def create_connector(settings: ConnectorSettings, credentials: CredentialsStore) -> Connector:
    return factory_for(settings.kind)(settings, credentials)
