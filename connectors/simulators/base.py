"""Shared parts of the API simulators: server, fault plan, counters, limits, OAuth tokens.

A simulator subclasses `SimServer` and implements `endpoint()` (a counter name for a
request), `handle()` (the answer) and optionally `admit()` (rate limits around `handle`).
The base owns the socket, per-request latency, the planned faults and the request counters,
so each simulator is only its system's routing and payload shapes.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlencode, urlsplit

Clock = Callable[[], float]

# "drop": close the socket before processing; "lost": process (e.g. rotate a refresh
# token) then close without answering; "malformed": process, then send a truncated body.
FAULT_KINDS = ("429", "500", "503", "drop", "lost", "malformed")


class FaultPlan:
    """Faults planned for requests whose path starts with a prefix, consumed in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: list[list[Any]] = []  # [path_prefix, kind, remaining]

    def add(self, path_prefix: str, kind: str, count: int = 1) -> None:
        """Answer the next `count` requests under `path_prefix` with fault `kind`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._plans.append([path_prefix, kind, count])

    def take(self, path: str) -> str | None:
        """Consume one planned fault matching this request path, if any."""
        with self._lock:
            for plan in self._plans:
                if plan[2] > 0 and path.startswith(plan[0]):
                    plan[2] -= 1
                    return plan[1]
            return None

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()

    def pending(self) -> int:
        """How many planned faults are not consumed yet."""
        with self._lock:
            return sum(plan[2] for plan in self._plans)


class Counters:
    """Requests per endpoint name and refused requests per limit kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.violations: dict[str, int] = {}

    def hit(self, endpoint: str) -> None:
        with self._lock:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1

    def violation(self, kind: str) -> None:
        with self._lock:
            self.violations[kind] = self.violations.get(kind, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.violations.clear()

    def total(self) -> int:
        """All requests received, whatever their answer."""
        with self._lock:
            return sum(self.requests.values())


class SlidingWindowLimiter:
    """At most `limit` acquisitions in any `window_seconds`; refusals do not use a slot."""

    def __init__(self, limit: int, window_seconds: float, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            now = self._clock()
            while self._stamps and self._stamps[0] <= now - self.window_seconds:
                self._stamps.popleft()
            if len(self._stamps) >= self.limit:
                return False
            self._stamps.append(now)
            return True

    def remaining(self) -> int:
        """Slots left in the current window (for X-*-Remaining style headers)."""
        with self._lock:
            now = self._clock()
            live = sum(1 for stamp in self._stamps if stamp > now - self.window_seconds)
            return max(0, self.limit - live)

    def retry_after(self) -> float:
        """Seconds until the oldest stamp leaves the window (0 when a slot is free)."""
        with self._lock:
            if len(self._stamps) < self.limit:
                return 0.0
            return max(0.0, self._stamps[0] + self.window_seconds - self._clock())


class ConcurrencyGauge:
    """In-flight requests per key (realm, tenant), refused above a cap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def try_enter(self, key: str, cap: int) -> bool:
        with self._lock:
            current = self._inflight.get(key, 0)
            if current >= cap:
                return False
            self._inflight[key] = current + 1
            self.peak[key] = max(self.peak.get(key, 0), current + 1)
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            self._inflight[key] = max(0, self._inflight.get(key, 0) - 1)

    def inflight(self, key: str) -> int:
        with self._lock:
            return self._inflight.get(key, 0)


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
    from decimal import Decimal

    if isinstance(value, Decimal):
        # float() of a 2-place Decimal prints back exactly ("12.5", "1234.56").
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class SimServer:
    """A real ThreadingHTTPServer on 127.0.0.1 (ephemeral port) served in a daemon thread.

    Subclasses implement `endpoint()` and `handle()`; `admit()` may refuse a request (rate
    limits) by yielding a Response, and the latency sleep happens while it is admitted so
    concurrency caps see slow requests as in flight.
    """

    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.latency = latency
        self.faults = FaultPlan()
        self.counters = Counters()
        self.errors: list[str] = []  # tracebacks of handler crashes (answered as 500)
        self.url = ""
        self._address = (host, port)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- hooks for subclasses -------------------------------------------------------
    def endpoint(self, request: Request) -> str:
        """The counter name for this request (e.g. "query:Invoice")."""
        return request.path

    def admit(self, request: Request) -> AbstractContextManager[Response | None]:
        """Hold a rate-limit slot around handling; yield a Response to refuse instead."""
        return nullcontext(None)

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def fault_response(self, kind: str, request: Request) -> Response:
        """The answer to a planned "429"/"500"/"503" fault; override for vendor shapes."""
        if kind == "429":
            headers = {"Retry-After": "1"}
            return Response.json({"error": "rate limited (planned fault)"}, 429, headers)
        return Response.json({"error": f"planned fault {kind}"}, int(kind))

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> str:
        """Bind, serve in a daemon thread, and return the base URL."""
        if self._httpd is not None:
            return self.url
        self._httpd = ThreadingHTTPServer(self._address, _make_handler(self))
        self._httpd.daemon_threads = True
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"{type(self).__name__}:{port}", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request pipeline -----------------------------------------------------------
    def serve(self, request: Request) -> tuple[Response | None, str | None]:
        """Count, apply a planned fault or the limits, handle. None response = drop socket."""
        self.counters.hit(self.endpoint(request))
        fault = self.faults.take(request.path)
        if fault == "drop":
            return None, fault
        if fault in ("429", "500", "503"):
            self._sleep()
            return self.fault_response(fault, request), fault
        with self.admit(request) as refusal:
            if refusal is not None:
                return refusal, fault
            self._sleep()
            response = self._safe_handle(request)
        if fault == "lost":
            return None, fault
        if fault == "malformed":
            cut = response.body[: max(1, len(response.body) // 2)] if response.body else b"{"
            response = Response(200, cut, response.content_type, response.headers)
        return response, fault

    def _safe_handle(self, request: Request) -> Response:
        try:
            return self.handle(request)
        except Exception:  # a simulator bug must answer 500, not hang the client
            self.errors.append(traceback.format_exc())
            return Response.json({"error": "simulator crashed", "detail": self.errors[-1]}, 500)

    def _sleep(self) -> None:
        if self.latency > 0:
            time.sleep(self.latency)


def _make_handler(sim: SimServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: SDK sessions reuse connections

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body)
            response, _ = sim.serve(request)
            if response is None:
                self.close_connection = True
                return
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

    return Handler


# -- OAuth 2 token authority ----------------------------------------------------------


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


@contextmanager
def held(gauge: ConcurrencyGauge, key: str, cap: int) -> Iterator[bool]:
    """Enter `gauge` for `key` if under `cap`; yields whether it entered, leaves on exit."""
    entered = gauge.try_enter(key, cap)
    try:
        yield entered
    finally:
        if entered:
            gauge.leave(key)
