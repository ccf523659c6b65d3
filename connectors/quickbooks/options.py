"""The QuickBooks connector's knobs, parsed once from `ConnectorSettings.options`.

Production uses the defaults: QuickBooks Online's published limits (500 requests a minute
and 10 in flight per realm), query pages and CDC responses of 1000, CDC 30 days back.
Tests and benchmarks lower the limits, shrink the waits and inject a virtual clock/sleep
so pacing and backoff cost no wall-clock time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import ConnectorError
from connectors.options import parse_known

MAX_PAGE_SIZE = 1000  # QBO caps MAXRESULTS at 1000


@dataclass(frozen=True)
class QboOptions:
    page_size: int = MAX_PAGE_SIZE
    per_minute: int = 500  # QBO: 500 requests per minute per realm
    concurrent: int = 10  # QBO: 10 requests in flight per realm
    retry_attempts: int = 6
    retry_base_wait: float = 0.5  # seconds; backoff multiplier of the retry policy
    connect_timeout: float = 10.0
    read_timeout: float = 120.0  # a page of 1000 invoices can take a while to render
    cdc_max_objects: int = 1000  # a CDC response this full may have been truncated
    cdc_max_days: float = 30.0  # CDC refuses a changedSince further back than this
    cdc_margin_seconds: float = 3600.0  # switch to queries this long before the CDC limit
    overlap_seconds: float = 300.0  # incremental pulls re-read this much before the cursor
    home_currency: str = "USD"  # for an invoice without CurrencyRef (single-currency files)
    # A full pull of at least this many pages past its first reads them in a second process
    # (`connectors.offload`) while this one stores; 0: never. Smaller pulls are not worth a process.
    offload_pages: int = 8
    sleep: Callable[[float], None] = time.sleep  # every wait (pacing, backoff, Retry-After)
    monotonic: Callable[[], float] = time.monotonic  # the pacing window's clock

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> QboOptions:
        """Validate `options`: unknown keys and out-of-range values are configuration errors."""
        parsed = parse_known(cls, options, "QuickBooks")
        if not 1 <= parsed.page_size <= MAX_PAGE_SIZE:
            raise ConnectorError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if min(parsed.per_minute, parsed.concurrent, parsed.retry_attempts, parsed.cdc_max_objects) < 1:
            raise ConnectorError("per_minute, concurrent, retry_attempts and cdc_max_objects must be >= 1")
        if parsed.offload_pages < 0:
            raise ConnectorError("offload_pages must be >= 0")
        if parsed.overlap_seconds < 0 or parsed.cdc_max_days <= 0:
            raise ConnectorError("overlap_seconds must be >= 0 and cdc_max_days > 0")
        return parsed
