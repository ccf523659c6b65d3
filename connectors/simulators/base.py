"""Shared parts of the API simulators: server, fault plan, counters, limits, OAuth tokens.

A simulator subclasses `SimServer` and implements `endpoint()` (a counter name for a
request), `handle()` (the answer) and optionally `admit()` (rate limits around `handle`).
The base owns the socket, per-request latency, the planned faults and the request counters,
so each simulator is only its system's routing and payload shapes.
"""

from __future__ import annotations

import random
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

# Request/Response and the token authority live in their own modules; re-exported here so
# a simulator imports its building blocks from one place.
from connectors.simulators.oauth import InvalidGrant, TokenAuthority, TokenPair
from connectors.simulators.wire import Clock, Request, Response

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


class _Listener(ThreadingHTTPServer):
    """The simulators' HTTP server, with a listen backlog an API's would have.

    socketserver's default backlog is 5: a pull opening ten connections at once overflowed
    it now and then, the kernel dropped the SYN, and that request waited for the client's
    retransmit, a whole second (`nstat` TcpExtListenDrops), which no real API would cost.
    """

    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        """A client that hung up before its answer was written (a sync stopped, a test
        ended) is the client's business, as it would be a real API's: socketserver printed
        the traceback to stderr, into the test run's output."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class SimServer:
    """A real ThreadingHTTPServer on 127.0.0.1 (ephemeral port) served in a daemon thread.

    Subclasses implement `endpoint()` and `handle()`; `admit()` may refuse a request (rate
    limits) by yielding a Response, and the latency sleep happens while it is admitted so
    concurrency caps see slow requests as in flight.
    """

    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.latency = latency
        self._released = threading.Event()  # set: latency waits end at once (`release`)
        # Up to this many seconds (at random) before a request is counted: requests sent
        # together reach the API in any order, as over a network (set by a test).
        self.arrival_jitter = 0.0
        self.faults = FaultPlan()
        self.counters = Counters()
        self.errors: list[str] = []  # tracebacks of handler crashes (answered as 500)
        self.url = ""
        self.host, self.port = host, port  # port 0: an ephemeral port, chosen at start()
        self._httpd: _Listener | None = None
        self._live_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
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
        self._httpd = _Listener((self.host, self.port), _make_handler(self))
        host, port = self._httpd.server_address[:2]
        self.port = port  # a restart after stop() reuses the same URL
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns promptly
            name=f"{type(self).__name__}:{port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._sockets_lock:  # keep-alive connections would otherwise still be served
            for connection in list(self._live_sockets):
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
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
        if self.arrival_jitter:
            time.sleep(random.uniform(0.0, self.arrival_jitter))
        with self.admit(request) as refusal:
            if refusal is not None:
                return refusal, fault
            began = time.monotonic()
            response = self._safe_handle(request)
            self._sleep(time.monotonic() - began)
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

    def _sleep(self, spent: float = 0.0) -> None:
        """Make the answer take `latency` in all, `spent` of which went into making it.

        An API's response time includes its own work. Rendered after the latency instead, a
        round of ten 1000-invoice pages (~15 ms each, one at a time under this process's
        GIL: no API serialises its answers so) came ~0.1 s on top of every latency.
        """
        if self.latency > spent:
            self._released.wait(self.latency - spent)

    def release(self) -> None:
        """End every latency wait now and from now on. A test that needs a sync held while it
        looks (a long latency) lets it finish at once afterwards, instead of guessing a
        latency long enough for a loaded machine and waiting it out."""
        self._released.set()


def _make_handler(sim: SimServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: SDK sessions reuse connections
        # Headers and body leave in separate writes; with Nagle on, each response waited
        # for the client's delayed ACK (~40 ms a request).
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with sim._sockets_lock:
                sim._live_sockets.add(self.connection)

        def finish(self) -> None:
            with sim._sockets_lock:
                sim._live_sockets.discard(self.connection)
            with suppress(OSError):
                super().finish()

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


@contextmanager
def held(gauge: ConcurrencyGauge, key: str, cap: int) -> Iterator[bool]:
    """Enter `gauge` for `key` if under `cap`; yields whether it entered, leaves on exit."""
    entered = gauge.try_enter(key, cap)
    try:
        yield entered
    finally:
        if entered:
            gauge.leave(key)


__all__ = [
    "Clock",
    "ConcurrencyGauge",
    "Counters",
    "FAULT_KINDS",
    "FaultPlan",
    "InvalidGrant",
    "Request",
    "Response",
    "SimServer",
    "SlidingWindowLimiter",
    "TokenAuthority",
    "TokenPair",
    "held",
]
