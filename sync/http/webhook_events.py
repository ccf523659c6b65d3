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
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Named:
    """The realm or tenant ids a notification names, and why it names none that could be read
    (`unread`; None also when it names none on purpose: Xero's "intent to receive" check)."""

    ids: frozenset[str]
    unread: str | None = None


def quickbooks_realms(body: bytes) -> Named:
    """The realm ids a QuickBooks notification names, in either format Intuit sends.

    Legacy: `{"eventNotifications": [{"realmId": ..., "dataChangeEvent": {...}}]}`.
    CloudEvents: `[{"specversion": "1.0", "type": "qbo.invoice.updated.v1",
    "intuitaccountid": REALM, "intuitentityid": ..., ...}]`. Unreadable parts are skipped.
    """
    payload = _json(body)
    if isinstance(payload, dict):
        notifications = payload.get("eventNotifications")
        if not isinstance(notifications, list):
            return Named(frozenset(), "no `eventNotifications` list")
        ids = {str(n["realmId"]) for n in notifications if isinstance(n, dict) and _id(n.get("realmId"))}
        return Named(frozenset(ids), None if ids else "no notification names a `realmId`")
    if isinstance(payload, list):
        events = (e for e in payload if isinstance(e, dict))
        ids = {str(e["intuitaccountid"]) for e in events if _id(e.get("intuitaccountid"))}
        return Named(frozenset(ids), None if ids else "no CloudEvents event names an `intuitaccountid`")
    if payload is _UNREADABLE:
        return Named(frozenset(), "not JSON")
    return Named(frozenset(), "neither `eventNotifications` nor a CloudEvents array")


def xero_tenants(body: bytes) -> Named:
    """The tenant ids of a Xero notification (none for the "intent to receive" check)."""
    payload = _json(body)
    if payload is _UNREADABLE:
        return Named(frozenset(), "not JSON")
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return Named(frozenset(), "no `events` list")
    ids = {str(e["tenantId"]).lower() for e in events if isinstance(e, dict) and _id(e.get("tenantId"))}
    return Named(frozenset(ids), None if ids or not events else "no event names a `tenantId`")


_UNREADABLE = object()


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _UNREADABLE


def _id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and 0 < len(str(value)) <= 64
