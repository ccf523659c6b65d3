"""QuickBooks Online connector (python-quickbooks), registered as kind "quickbooks".

client.py     the SDK per realm: bearer token, timeouts, pacing, the retry policy
errors.py     every failure classified once (429, 401, I/O, 5xx, malformed, refusals)
normalize.py  QBO JSON -> CustomerRecord / InvoiceRecord (the only code knowing QBO fields)
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
