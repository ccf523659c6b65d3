"""Absolute-form request targets (`GET http://host:port/path HTTP/1.1`, RFC 9112 section
3.2.2), which a server must accept: routed by their path and query exactly as the origin-form,
sent over a raw socket to the running `arsync serve`."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.http.conftest import Served


def exchange(base: str, request: str) -> tuple[bytes, bytes]:
    """(status line, body) of the answer to `request`, sent as is on a new connection."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request.encode("ascii"))
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/v1/companies/qbo/customers/1/invoices"),
        ("GET", "/v1/companies/qbo/customers/1/balance?on=not-a-date"),  # the query's own 422
        ("GET", "/readyz"),
        ("HEAD", "/healthz"),
        ("GET", "/v1/companies/qbo/customers/1/invoices/"),  # one spelling per path: a 404
    ],
    ids=["portal read", "query", "readyz", "head", "trailing slash"],
)
def test_an_absolute_form_target_is_answered_as_its_origin_form(served: Served, method: str, target: str):
    headers = (
        f"Host: elsewhere.example\r\nAuthorization: Bearer {served.keys['qbo']}\r\nConnection: close\r\n\r\n"
    )
    origin = exchange(served.base, f"{method} {target} HTTP/1.1\r\n{headers}")
    absolute = [
        exchange(
            served.base, f"{method} {scheme}{urlsplit(served.base).netloc}{target} HTTP/1.1\r\n{headers}"
        )
        for scheme in ("http://", "HTTP://")
    ]
    assert absolute == [origin, origin]
    assert origin[0].split(b" ")[1] != b"404" or target.endswith("/")


def test_an_absolute_form_target_without_a_path_is_the_root(served: Served):
    host = urlsplit(served.base).netloc
    origin = exchange(served.base, f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    absolute = exchange(
        served.base, f"GET http://{host} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    assert absolute == origin == (b"HTTP/1.1 404 Not Found", b'{"error":"not found"}')
