"""OAuth 2 for the simulators: token and code issuing, refresh-token rotation, and the
token and consent endpoints both simulators answer with."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlencode

from connectors.simulators.wire import Clock, Request, Response


class TokenPair(NamedTuple):
    access_token: str
    refresh_token: str


class InvalidGrant(Exception):
    """The refresh token or authorization code is unknown, used, or expired."""


@dataclass
class _RefreshState:
    successor: TokenPair | None = None  # set once used
    used_at: float = 0.0


class TokenAuthority:
    """Issues and checks OAuth tokens with refresh-token rotation.

    Each refresh returns a new pair and invalidates the old refresh token; within
    `refresh_grace` seconds of its first use the old token still answers with the same new
    pair (Xero's grace for a lost response). Times come from `clock` (seconds).
    """

    def __init__(
        self,
        *,
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",
        access_ttl: float = 3600.0,
        refresh_grace: float = 0.0,
        clock: Clock = time.time,
        prefix: str = "sim",
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.access_ttl = access_ttl
        self.refresh_grace = refresh_grace
        self._clock, self._prefix = clock, prefix
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}  # token -> expires at
        self._refresh: dict[str, _RefreshState] = {}
        self._codes: dict[str, str | None] = {}  # code -> redirect_uri
        self.refreshes = 0  # successful refresh grants (tests assert single refreshes)

    def issue(self) -> TokenPair:
        """Mint a fresh pair without any browser flow (tests, demo)."""
        with self._lock:
            return self._mint()

    def _mint(self) -> TokenPair:
        pair = TokenPair(
            f"{self._prefix}-at-{secrets.token_urlsafe(18)}",
            f"{self._prefix}-rt-{secrets.token_urlsafe(18)}",
        )
        self._access[pair.access_token] = self._clock() + self.access_ttl
        self._refresh[pair.refresh_token] = _RefreshState()
        return pair

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: a new pair for a live refresh token; raises InvalidGrant otherwise."""
        with self._lock:
            state = self._refresh.get(refresh_token)
            if state is None:
                raise InvalidGrant("unknown refresh token")
            if state.successor is not None:
                if self._clock() - state.used_at <= self.refresh_grace:
                    return state.successor
                raise InvalidGrant("refresh token already used")
            state.successor, state.used_at = self._mint(), self._clock()
            self.refreshes += 1
            return state.successor

    def authorize(self, redirect_uri: str | None = None) -> str:
        """Mint a single-use authorization code (what the consent page would return)."""
        code = f"{self._prefix}-code-{secrets.token_urlsafe(12)}"
        with self._lock:
            self._codes[code] = redirect_uri
        return code

    def authorize_redirect(self, request: Request, **extra: str) -> Response:
        """The consent page, auto-approved: 302 to redirect_uri with code, state and `extra`.

        `extra` carries vendor additions (QuickBooks appends `realmId`).
        """
        redirect_uri = request.param("redirect_uri")
        if request.param("client_id") != self.client_id or not redirect_uri:
            return Response.json({"error": "invalid_request"}, 400)
        params = {"code": self.authorize(redirect_uri), **extra}
        if request.param("state") is not None:
            params["state"] = request.param("state") or ""
        separator = "&" if "?" in redirect_uri else "?"
        location = redirect_uri + separator + urlencode(params)
        return Response(302, b"", "text/plain", {"Location": location})

    def exchange_code(self, code: str, redirect_uri: str | None = None) -> TokenPair:
        with self._lock:
            if code not in self._codes:
                raise InvalidGrant("unknown or used authorization code")
            expected = self._codes.pop(code)
            if expected is not None and redirect_uri != expected:
                raise InvalidGrant("redirect_uri mismatch")
            return self._mint()

    def check(self, access_token: str | None) -> bool:
        """True for a known access token that has not expired."""
        with self._lock:
            expires = self._access.get(access_token or "")
            return expires is not None and self._clock() < expires

    def expire(self, access_token: str | None = None) -> None:
        """Expire one access token, or all of them (simulate the 1-hour/30-minute limit)."""
        with self._lock:
            for token in [access_token] if access_token else list(self._access):
                if token in self._access:
                    self._access[token] = float("-inf")

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh.pop(refresh_token, None)

    def token_response(self, request: Request, extra: dict[str, Any] | None = None) -> Response:
        """The OAuth token endpoint: refresh_token and authorization_code grants.

        Client auth is HTTP Basic or client_id/client_secret form fields. Errors follow
        RFC 6749: 400 invalid_grant / unsupported_grant_type, 401 invalid_client.
        """
        form = request.form()
        client = request.basic_auth() or (form.get("client_id", ""), form.get("client_secret", ""))
        if client != (self.client_id, self.client_secret):
            return Response.json({"error": "invalid_client"}, 401)
        grant = form.get("grant_type")
        try:
            if grant == "refresh_token":
                pair = self.refresh(form.get("refresh_token", ""))
            elif grant == "authorization_code":
                pair = self.exchange_code(form.get("code", ""), form.get("redirect_uri"))
            else:
                return Response.json({"error": "unsupported_grant_type"}, 400)
        except InvalidGrant:
            return Response.json({"error": "invalid_grant"}, 400)
        payload = {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "bearer",
            "expires_in": int(self.access_ttl),
            **(extra or {}),
        }
        return Response.json(payload, headers={"Cache-Control": "no-store"})
