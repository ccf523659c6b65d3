"""The Xero connector's knobs, parsed once from `ConnectorSettings.options`.

Production uses the defaults (Xero's published limits, pages of 1000). Tests and benchmarks
lower the limits, shrink the waits and inject a virtual clock/sleep so a rate-limit storm
or a Retry-After costs no wall-clock time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import ConnectorError
from connectors.options import parse_known

MAX_PAGE_SIZE = 1000  # Xero's cap for pageSize on Contacts and Invoices


@dataclass(frozen=True)
class XeroOptions:
    page_size: int = MAX_PAGE_SIZE
    per_minute: int = 60  # Xero: 60 calls per minute per tenant
    concurrent: int = 5  # Xero: 5 calls in flight per tenant
    retry_attempts: int = 6
    retry_base_wait: float = 0.5  # seconds; backoff multiplier of the retry policy
    ids_per_request: int = 50  # contacts fetched by id in one GET /Contacts?IDs=...
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep  # every wait (pacing, backoff, Retry-After)
    monotonic: Callable[[], float] = time.monotonic  # the pacing window's clock

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> XeroOptions:
        """Validate `options`: unknown keys and out-of-range values are configuration errors."""
        parsed = parse_known(cls, options, "Xero")
        if not 1 <= parsed.page_size <= MAX_PAGE_SIZE:
            raise ConnectorError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if min(parsed.per_minute, parsed.concurrent, parsed.retry_attempts, parsed.ids_per_request) < 1:
            raise ConnectorError("per_minute, concurrent, retry_attempts and ids_per_request must be >= 1")
        return parsed
