"""QuickBooks Online connector (python-quickbooks), registered as kind "quickbooks".

provider.py   the OAuth provider (Intuit's consent page, token URL, scopes)
client.py     the SDK per realm: bearer token (`connectors.bearer`), timeouts, pacing, retries
errors.py     every failure classified once (429, 401, I/O, 5xx, malformed, refusals)
normalize.py  QBO JSON -> CustomerRecord / InvoiceRecord (the only code knowing QBO fields)
signals.py    what QBO invoice fields mean: sent, voided, deleted
cursor.py     the resumable cursor
pull.py       full listings, CDC windows, LastUpdatedTime listings
options.py    knobs for tests and benchmarks
"""

from __future__ import annotations

from connectors.base import CredentialsStore
from connectors.quickbooks.connector import QuickBooksConnector
from connectors.registry import ConnectorSettings

__all__ = ["QuickBooksConnector", "create"]


def create(settings: ConnectorSettings, credentials: CredentialsStore) -> QuickBooksConnector:
    """The registry's factory: a connector for one QuickBooks realm (no network I/O here)."""
    return QuickBooksConnector(settings, credentials)
