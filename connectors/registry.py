"""Connector kinds, found through an explicit registry.

Built-in kinds are registered by name; third-party packages add kinds through the
entry-point group `arsync.connectors`, whose objects are factories with the same
signature as the built-ins: `factory(settings: ConnectorSettings, credentials) -> Connector`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from connectors.base import Connector, CredentialsStore
from connectors.ratelimit import PacingFactory

ENTRY_POINT_GROUP = "arsync.connectors"
BUILTIN = {
    "quickbooks": "connectors.quickbooks:create",
    "xero": "connectors.xero:create",
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
    pacing: PacingFactory | None = None  # a budget shared across processes; None: per client


Factory = Callable[[ConnectorSettings, CredentialsStore], Connector]


class UnknownConnector(LookupError):
    pass


def available_kinds() -> list[str]:
    return sorted({*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def factory_for(kind: str) -> Factory:
    """The factory for `kind`: built-in first, then the `arsync.connectors` entry points."""
    if kind in BUILTIN:
        module, _, name = BUILTIN[kind].partition(":")
        return getattr(import_module(module), name)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == kind:
            return entry.load()
    raise UnknownConnector(f"unknown connector kind {kind!r} (available: {', '.join(available_kinds())})")


def create_connector(settings: ConnectorSettings, credentials: CredentialsStore) -> Connector:
    return factory_for(settings.kind)(settings, credentials)
