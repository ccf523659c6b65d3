"""The webhooks' request bodies and signature headers, as the OpenAPI document declares them.

The routes read the raw body themselves (the signature is over its bytes, and an unsigned
body is refused 401 before anything parses it), so FastAPI sees no body parameter and,
without these, documented the webhooks as taking no body and no header. They describe what
Intuit and Xero send (more fields may come: none is refused for it); nothing here checks a
request.
"""

from __future__ import annotations

from typing import Any

_ID = {"type": ["string", "integer"], "description": "Compared as text"}

QUICKBOOKS_LEGACY = {
    "title": "QuickBooksEventNotifications",
    "description": "Intuit's legacy format",
    "type": "object",
    "required": ["eventNotifications"],
    "properties": {
        "eventNotifications": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["realmId"],
                "properties": {
                    "realmId": {**_ID, "description": "The QuickBooks company (realm) that changed"},
                    "dataChangeEvent": {
                        "type": "object",
                        "properties": {
                            "entities": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        name: {"type": "string"}
                                        for name in ("name", "id", "operation", "lastUpdated")
                                    },
                                },
                            }
                        },
                    },
                },
            },
        }
    },
}

QUICKBOOKS_CLOUD_EVENTS = {
    "title": "QuickBooksCloudEvents",
    "description": "Intuit's CloudEvents format: an array of events",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["intuitaccountid"],
        "properties": {
            "specversion": {"type": "string", "examples": ["1.0"]},
            "id": {"type": "string"},
            "type": {"type": "string", "examples": ["qbo.invoice.updated.v1"]},
            "intuitaccountid": {**_ID, "description": "The QuickBooks company (realm) that changed"},
            "intuitentityid": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
        },
    },
}

XERO_EVENTS = {
    "title": "XeroEvents",
    "description": 'Xero\'s events; an empty list is its "intent to receive" check',
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tenantId"],
                "properties": {
                    "tenantId": {"type": "string", "description": "The Xero organisation that changed"},
                    "eventCategory": {"type": "string", "examples": ["INVOICE", "CONTACT"]},
                    "resourceId": {"type": "string"},
                    "eventType": {"type": "string"},
                    "eventDateUtc": {"type": "string"},
                },
            },
        },
        "firstEventSequence": {"type": "integer"},
        "lastEventSequence": {"type": "integer"},
        "entropy": {"type": "string"},
    },
}


def signed_body(header: str, secret: str, body: dict) -> dict[str, Any]:
    """`openapi_extra` of a webhook route: its JSON body and its required signature header."""
    signature = {
        "name": header,
        "in": "header",
        "required": True,
        "description": f"base64 of the HMAC-SHA256 of the raw body, keyed with the {secret}; "
        "missing or wrong: 401",
        "schema": {"type": "string"},
    }
    return {
        "parameters": [signature],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
    }


QUICKBOOKS = signed_body(
    "intuit-signature", "verifier token", {"oneOf": [QUICKBOOKS_LEGACY, QUICKBOOKS_CLOUD_EVENTS]}
)
XERO = signed_body("x-xero-signature", "webhook key", XERO_EVENTS)
