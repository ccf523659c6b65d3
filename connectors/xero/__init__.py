"""Xero connector (xero-python): contacts and sales invoices of one tenant, page by page.

Modules, in the order a request flows through them:
- `options`: the test/bench knobs of `ConnectorSettings.options`, validated once;
- `connector`: `XeroConnector`, what `create` returns;
- `cursor`: the resumable position, per-entity If-Modified-Since watermarks, held suppliers;
- `pull`: paging into `Page`s (contacts, then ACCREC invoices; suppliers held back);
- `client`: the isolated xero-python client, tokens (`connectors.bearer`), pacing, retries;
- `errors`: the classification table;
- `normalize`: the only code that knows Xero's field names;
- `signals`: what Xero's invoice and contact fields mean (sent, live, sales, active, customer);
- `provider`: the OAuth provider (consent page, token URL, scopes, refresh-token lifetime).
"""

from __future__ import annotations

from connectors.base import CredentialsStore
from connectors.registry import ConnectorSettings
from connectors.xero.connector import XeroConnector


def create(settings: ConnectorSettings, credentials: CredentialsStore) -> XeroConnector:
    """The registry's factory for kind "xero"."""
    return XeroConnector(settings, credentials)


__all__ = ["XeroConnector", "create"]
