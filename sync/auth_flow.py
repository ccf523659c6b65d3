"""The OAuth2 authorization-code flow with a local redirect listener (`arsync auth connect`).

arsync listens on 127.0.0.1 for the provider's redirect, checks `state` in constant time,
exchanges the code and commits the tokens before reporting success.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from connectors.base import Tokens
from connectors.oauth import InvalidGrant, TokenEndpoint


class AuthFlowError(Exception):
    """The authorization did not complete; the message says why."""


@dataclass
class Callback:
    params: dict[str, str]


def _listener(result: list[Callback], done: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # a connection that sends no request (a browser's preconnect) is dropped

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            parts = urlsplit(self.path)
            if parts.path != "/callback":
                self.send_error(404)
                return
            result.append(Callback({k: v[0] for k, v in parse_qs(parts.query).items()}))
            body = b"arsync: authorization received. You can close this window."
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            done.set()

        def log_message(self, *args: object) -> None:
            return

    return Handler


def authorize(
    *,
    authorize_url: str,
    client_id: str,
    scopes: tuple[str, ...],
    endpoint: TokenEndpoint,
    show: Callable[[str], None],
    now: Callable[[], datetime],
    port: int = 0,
    timeout: float = 300.0,
) -> tuple[Tokens, dict[str, str]]:
    """Run the flow; returns the tokens and the callback's extra parameters (e.g. QuickBooks realmId)."""
    result: list[Callback] = []
    done = threading.Event()
    try:
        # One thread per connection: a browser's idle speculative connection must not hold
        # up the redirect, as it would a server that handles one connection at a time.
        server = ThreadingHTTPServer(("127.0.0.1", port), _listener(result, done))
    except OSError as exc:  # the port is taken (or not ours to take)
        raise AuthFlowError(
            f"cannot listen for the redirect on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    state = secrets.token_urlsafe(24)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        show(f"{authorize_url}{'&' if '?' in authorize_url else '?'}{query}")
        if not done.wait(timeout):
            raise AuthFlowError(f"no authorization received within {int(timeout)} seconds")
    finally:
        server.shutdown()
        server.server_close()
    params = result[0].params
    if "error" in params:
        raise AuthFlowError(f"the provider refused the authorization: {params['error']}")
    if not hmac.compare_digest(params.get("state", ""), state):
        raise AuthFlowError("state mismatch: the redirect did not come from this authorization request")
    if "code" not in params:
        raise AuthFlowError("the redirect carried no authorization code")
    try:
        tokens = endpoint.exchange_code(params["code"], redirect_uri, now())
    except InvalidGrant as exc:  # a used or expired code, or a redirect_uri it was not issued for
        raise AuthFlowError(
            f"the provider refused the authorization code ({exc}); run `arsync auth connect` again"
        ) from None
    extra = {k: v for k, v in params.items() if k not in ("code", "state")}
    return tokens, extra
