"""HTTP requests and responses as the simulators see them (no sockets here)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import Message
from typing import Any, Self
from urllib.parse import parse_qs

Clock = Callable[[], float]


@dataclass
class Request:
    """One parsed HTTP request as a simulator sees it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        """First value of query parameter `name` (exact, case-sensitive name)."""
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        """The body as application/x-www-form-urlencoded fields (first value each)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    def bearer(self) -> str | None:
        """The bearer token of the Authorization header, if any."""
        value = self.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def basic_auth(self) -> tuple[str, str] | None:
        """(client_id, client_secret) from HTTP Basic auth, if present and well formed."""
        value = self.headers.get("Authorization", "")
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Self:
        """A JSON answer; `payload` may hold Decimals (rendered as JSON numbers)."""
        body = json.dumps(payload, default=_json_default, separators=(",", ":")).encode()
        return cls(status, body, "application/json", dict(headers or {}))

    @classmethod
    def raw_json(cls, body: bytes, status: int = 200) -> Self:
        """An already-encoded JSON body (the simulators' pre-rendered fast path)."""
        return cls(status, body, "application/json")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # float() of a 2-place Decimal prints back exactly ("12.5", "1234.56").
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
