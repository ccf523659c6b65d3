"""Which Xero organisations a connection may read: `GET /Connections`, for `arsync auth connect`.

A Xero consent covers the organisations the user ticked; every later call names one of them
in `xero-tenant-id`. Showing them right after connecting saves an admin the round trip of a
sync failing with 403 because `connection.tenant_id` names another one.
"""

from __future__ import annotations

from typing import NamedTuple

from urllib3.exceptions import HTTPError
from xero_python.exceptions import ApiException
from xero_python.identity import IdentityApi

from connectors.base import ConnectorError
from connectors.xero.client import isolated_api_client

ACCOUNTING_PATH = "/api.xro/2.0"


class Tenant(NamedTuple):
    tenant_id: str
    name: str


def connected_tenants(access_token: str, api_base_url: str = "", timeout: float = 30.0) -> list[Tenant]:
    """The organisations `access_token` may read; `api_base_url` is the accounting API's (the
    identity API lives at its root). `ConnectorError` when Xero does not say."""
    token = {"access_token": access_token, "token_type": "Bearer", "scope": None, "expires_in": None}
    client = isolated_api_client(lambda: token)
    root = api_base_url.rstrip("/").removesuffix(ACCOUNTING_PATH) or None
    try:
        connections = IdentityApi(client, base_url=root).get_connections(_request_timeout=timeout)
    except ApiException as exc:
        raise ConnectorError(f"Xero did not list the connected organisations: HTTP {exc.status}") from None
    except (OSError, HTTPError) as exc:  # connection refused, DNS, timeout
        raise ConnectorError(f"Xero did not list the connected organisations: {exc}") from None
    return [Tenant(str(c.tenant_id), c.tenant_name or "") for c in connections or []]
