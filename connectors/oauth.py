"""OAuth2 tokens for QuickBooks Online and Xero: refresh ahead of expiry, rotation-safe.

Both providers rotate refresh tokens (Xero on every refresh, QuickBooks often), so the new
pair is saved and committed through the caller's `CredentialsStore` *before* the new access
token is used, under the store's cross-process refresh lock. A refused refresh token
(`invalid_grant`) marks the connection "reconnect needed" and is never retried.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus, urlencode

import requests

from connectors.base import ConnectorError, CredentialsStore, ReconnectNeeded, Tokens

REFRESH_AHEAD = timedelta(minutes=5)
# Waits between attempts to store a rotated pair (about 30 s in all, well within the refresh
# lock's 2 minutes): once the endpoint has answered, this process holds the only copy of the
# new refresh token, so a store that hiccups (a failover, a dropped connection, a busy SQLite
# writer) is waited for rather than losing the connection.
SAVE_WAITS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
REFUSED = "the accounting system refused the refresh token: reconnect needed"
NO_TOKENS = "no tokens stored: run `arsync auth connect{company}` or `arsync auth set-tokens{company}`"
CLIENT_REFUSED = (
    "check connection.client_id and the secret in the variable connection.client_secret_env "
    "names (rotated in the provider's developer portal?); the stored tokens are kept"
)


class InvalidGrant(Exception):
    """The token endpoint refused the grant (refresh token used, expired or revoked)."""


class TokenEndpointError(ConnectorError):
    """The token endpoint gave no tokens: unreachable (`status` None) or an unusable answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, a 5xx, 408/429, or a malformed 200; not a 4xx refusal."""
        return self.status is None or not 400 <= self.status < 500 or self.status in (408, 429)


@dataclass(frozen=True)
class TokenEndpoint:
    url: str
    client_id: str
    client_secret: str
    timeout: float = 30.0
    refresh_token_lifetime: timedelta | None = None  # Xero: 60 days; QuickBooks: x_refresh_token_expires_in
    headers: tuple[tuple[str, str], ...] = ()  # the provider's own, on every token request

    def _post(self, form: dict[str, str], now: datetime, keep: str | None = None) -> Tokens:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        try:
            response = requests.post(
                self.url,
                data=urlencode(form),
                headers={
                    **dict(self.headers),
                    "Authorization": f"Basic {basic}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TokenEndpointError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        body = _json(response)
        # What the endpoint says goes into errors that are stored and printed (a run's error,
        # a connection's "reconnect needed" detail): one that echoes the request must not
        # carry the grant or the client's credentials there.
        sent = [basic, self.client_secret, *(form[k] for k in ("refresh_token", "code") if k in form)]
        sent += [quote_plus(secret) for secret in sent]  # as the echoed form spells them
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            raise InvalidGrant(_hidden(str(body.get("error_description") or "invalid_grant"), sent))
        if body.get("error") == "invalid_client":  # RFC 6749 5.2: the app's credentials, not the grant
            raise TokenEndpointError(
                f"the token endpoint refused the app's client credentials (HTTP {response.status_code} "
                f"invalid_client): {CLIENT_REFUSED}",
                response.status_code,
            )
        if response.status_code != 200 or "access_token" not in body:
            said = _hidden(str(body.get("error", "")), sent)
            raise TokenEndpointError(
                f"token endpoint answered HTTP {response.status_code}: {said}", response.status_code
            )
        return self._tokens(body, now, keep)

    def _tokens(self, body: dict, now: datetime, keep: str | None) -> Tokens:
        """The answer's tokens. A refresh answered without a refresh token keeps the one sent
        (RFC 6749 section 6: the server *may* issue a new one); a code exchange must bring one.
        The grant is spent by now, so an odd lifetime is taken as the default, never fatal.
        The refresh token ends at the nearer of its rolling lifetime and QuickBooks' 5-year
        limit from the consent (`x_refresh_token_hard_expires_in`), which no refresh moves."""
        refresh_token = body.get("refresh_token") or keep
        if not isinstance(refresh_token, str) or not refresh_token:
            raise TokenEndpointError(
                "the token endpoint answered without a refresh token (was offline access granted?)", 200
            )
        said = [
            _seconds(body.get(key))
            for key in ("x_refresh_token_expires_in", "x_refresh_token_hard_expires_in")
        ]
        lives = [life for life in said if life]
        refresh_expires = (
            now + timedelta(seconds=min(lives))
            if lives
            else (now + self.refresh_token_lifetime if self.refresh_token_lifetime else None)
        )
        return Tokens(
            access_token=body["access_token"],
            refresh_token=refresh_token,
            access_expires_at=now + timedelta(seconds=_seconds(body.get("expires_in")) or 3600),
            refresh_expires_at=refresh_expires,
        )

    def refresh(self, refresh_token: str, now: datetime) -> Tokens:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._post(form, now, keep=refresh_token)

    def exchange_code(self, code: str, redirect_uri: str, now: datetime) -> Tokens:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._post(form, now)


def _hidden(text: str, secrets: Sequence[str]) -> str:
    """`text` with each of `secrets` masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _seconds(value: object) -> int | None:
    """A lifetime in seconds as the token endpoint sent it (a number or a numeric string)."""
    try:
        seconds = int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if seconds > 0 else None


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class TokenManager:
    """Hands out a valid access token, refreshing once per expiry across processes."""

    def __init__(
        self,
        credentials: CredentialsStore,
        endpoint: TokenEndpoint,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ahead: timedelta = REFRESH_AHEAD,
        save_waits: Sequence[float] = SAVE_WAITS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.credentials = credentials
        self.endpoint = endpoint
        self.clock = clock
        self.ahead = ahead
        self.save_waits = tuple(save_waits)
        self.sleep = sleep
        self.refreshes = 0  # refreshes this manager performed (tests, status)
        self.requests = 0  # refresh requests sent to the token endpoint, answered or not (API calls)
        self._cached: Tokens | None = None
        self._refused: str | None = None  # a refresh token the endpoint refused: never sent again

    def access_token(self) -> str:
        tokens = self._cached or self._load()
        if tokens.access_expires_at - self.ahead > self.clock():
            self._cached = tokens
            return tokens.access_token
        return self.refresh(stale=tokens.access_token)

    def refresh(self, stale: str | None = None) -> str:
        """Refresh under the lock, unless another process already did since `stale` was read."""
        with self.credentials.refresh_lock():
            current = self._load()
            fresh = current.access_expires_at - self.ahead > self.clock()
            if stale is not None and current.access_token != stale and fresh:
                self._cached = current
                return current.access_token
            if current.refresh_token == self._refused:  # another thread's request was just refused
                raise ReconnectNeeded(REFUSED, recorded=True)  # and that thread marked it
            self.requests += 1
            try:
                new = self.endpoint.refresh(current.refresh_token, self.clock())
            except InvalidGrant as exc:
                self._refused = current.refresh_token
                self.credentials.mark_reconnect_needed(
                    f"refresh token refused ({exc}); run `arsync auth connect{self._company}`"
                )
                raise ReconnectNeeded(REFUSED, recorded=True) from exc
            self._save(new)  # committed before the new access token is used
            self.refreshes += 1
            self._cached = new
            return new.access_token

    def _save(self, tokens: Tokens) -> None:
        """Store the rotated pair, trying again while the store fails: the old refresh token
        is already spent (QuickBooks keeps no grace for it), so giving up at the first
        failure would leave a stored token the provider refuses: a lost connection."""
        for wait in (*self.save_waits, None):
            try:
                self.credentials.save(tokens)
                return
            except Exception:
                if wait is None:
                    raise
                self.sleep(wait)

    def invalidate(self) -> None:
        """Forget the cached token (after a 401) so the next call re-reads or refreshes."""
        self._cached = None

    def keep_alive(self, within: timedelta) -> bool:
        """Refresh now if the refresh token would expire unused within `within`, or when its
        expiry is unknown (tokens stored by hand): the answer says it, or the provider's
        lifetime does, and a token nobody knew the age of is not left to die unused."""
        tokens = self._load()
        expires = tokens.refresh_expires_at
        if expires is None or expires - within <= self.clock():
            self.refresh()
            return True
        return False

    def _load(self) -> Tokens:
        tokens = self.credentials.load()
        if tokens is None:
            advice = NO_TOKENS.format(company=self._company)
            self.credentials.mark_reconnect_needed(advice)
            raise ReconnectNeeded(advice, recorded=True)
        return tokens

    @property
    def _company(self) -> str:
        """The company's id, after a space, for the advice stored with the connection: the
        commands take it (a store that does not say whose tokens it keeps leaves it out)."""
        company = getattr(self.credentials, "company_id", None)
        return f" {company}" if isinstance(company, str) and company else ""


@dataclass(frozen=True)
class Provider:
    """A connector kind's OAuth2 endpoints and the scopes arsync asks for.

    Each kind brings its own (`connectors/<kind>/provider.py`, or a `provider` attribute on
    a third-party factory); `connectors.registry.provider_for(kind)` finds it.
    """

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    refresh_token_lifetime: timedelta | None = None  # when the token answer does not say
    token_headers: tuple[tuple[str, str], ...] = ()  # sent with every token request

    def endpoint(self, *, client_id: str, client_secret: str, token_url: str = "") -> TokenEndpoint:
        """This provider's token endpoint, with the configured `token_url` override if any."""
        return TokenEndpoint(
            token_url or self.token_url,
            client_id,
            client_secret,
            refresh_token_lifetime=self.refresh_token_lifetime,
            headers=self.token_headers,
        )
