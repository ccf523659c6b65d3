"""Webhook signatures and payloads of QuickBooks Online and Xero, as pure functions.

Both vendors sign the raw body: base64(HMAC-SHA256(secret, body)). A payload only says
which realm (QuickBooks company) or tenant (Xero organisation) changed; what changed is
read by the incremental sync it triggers, so the entities themselves are not needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

MAX_BODY = 1_048_576  # 1 MiB: bodies beyond are refused (413) while being read


def signature(secret: str, body: bytes) -> str:
    """The header value the vendor sends for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header over the raw body; no secret, no pass."""
    if not secret or not header:
        return False
    return hmac.compare_digest(
        signature(secret, body).encode("ascii"), header.strip().encode("ascii", "replace")
    )


def quickbooks_realms(body: bytes) -> set[str]:
    """The realm ids a QuickBooks notification names, in either format Intuit sends.

    Legacy: `{"eventNotifications": [{"realmId": ..., "dataChangeEvent": {...}}]}`.
    CloudEvents: `[{"specversion": "1.0", "type": "qbo.invoice.updated.v1",
    "intuitaccountid": REALM, "intuitentityid": ..., ...}]`. Unreadable parts are skipped.
    """
    payload = _json(body)
    if isinstance(payload, dict):
        notifications = payload.get("eventNotifications")
        items = notifications if isinstance(notifications, list) else []
        return {str(n["realmId"]) for n in items if isinstance(n, dict) and _id(n.get("realmId"))}
    if isinstance(payload, list):
        return {
            str(e["intuitaccountid"])
            for e in payload
            if isinstance(e, dict) and _id(e.get("intuitaccountid"))
        }
    return set()


def xero_tenants(body: bytes) -> set[str]:
    """The tenant ids of a Xero notification (none for the "intent to receive" check)."""
    payload = _json(body)
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return set()
    return {str(e["tenantId"]).lower() for e in events if isinstance(e, dict) and _id(e.get("tenantId"))}


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and 0 < len(str(value)) <= 64
