"""Absolute-form request targets routed by their path, as the origin-form.

RFC 9112 (section 3.2.2): a server MUST accept `GET http://host:port/v1/... HTTP/1.1`, which
proxies send and some clients do when configured with one. uvicorn's h11 parser hands the
whole target on as the path, so every such request was a 404. The target's path (`/` when
it has none) becomes the request's path, its query string was split off already, and its
authority replaces the Host header, which the RFC says to ignore then.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

# scheme and authority of an absolute-form target (schemes are case-insensitive)
_ABSOLUTE = re.compile(r"(?i)https?://([^/]*)")
_ABSOLUTE_RAW = re.compile(rb"(?i)https?://([^/]*)")


class AbsoluteFormTargets:
    """ASGI middleware: a request whose target is absolute-form goes in with its origin-form."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = origin_form(scope)
        await self.app(scope, receive, send)


def origin_form(scope: Scope) -> Scope:
    """`scope` with an absolute-form target's path and Host in place (unchanged otherwise)."""
    root = scope.get("root_path", "")
    path: str = scope["path"]
    prefix = root if root and path.startswith(root) else ""  # servers that put root_path in path
    found = _ABSOLUTE.match(path, len(prefix))
    if found is None:
        return scope
    changed = {**scope, "path": prefix + (path[found.end() :] or "/")}
    authority = found.group(1).encode("utf-8")
    raw: bytes | None = scope.get("raw_path")
    if raw is not None:
        start = len(prefix) if raw.startswith(prefix.encode("utf-8")) else 0
        raw_found = _ABSOLUTE_RAW.match(raw, start)
        if raw_found is not None:
            changed["raw_path"] = raw[:start] + (raw[raw_found.end() :] or b"/")
            authority = raw_found.group(1)  # as sent, not percent-decoded
    if authority:
        headers = [(name, value) for name, value in scope.get("headers", []) if name != b"host"]
        changed["headers"] = [(b"host", authority), *headers]
    return changed
