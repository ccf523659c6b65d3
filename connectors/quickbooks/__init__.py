"""QuickBooks Online connector (python-quickbooks), registered as kind "quickbooks".

provider.py   the OAuth provider (Intuit's consent page, token URL, scopes)
client.py     the SDK per realm: bearer token (`connectors.bearer`), timeouts, pacing, retries
errors.py     every failure classified once (429, 401, I/O, 5xx, malformed, refusals)
normalize.py  QBO JSON -> CustomerRecord / InvoiceRecord (the only code knowing QBO fields)
listed.py     a full listing's page read from its raw body (in-process or in `connectors.offload`)
signals.py    what QBO invoice fields mean: sent, voided, deleted
cursor.py     the resumable cursor
pull.py       full listings, CDC windows, LastUpdatedTime listings
options.py    knobs for tests and benchmarks
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK loads with the connector, not with this package: the page
    # decoder's process (`connectors.offload`) imports decode and normalize alone
    from connectors.base import CredentialsStore
    from connectors.quickbooks.connector import QuickBooksConnector
    from connectors.registry import ConnectorSettings

__all__ = ["create"]


def create(settings: ConnectorSettings, credentials: CredentialsStore) -> QuickBooksConnector:
    """The registry's factory: a connector for one QuickBooks realm (no network I/O here)."""
    from connectors.quickbooks.connector import QuickBooksConnector

    return QuickBooksConnector(settings, credentials)
