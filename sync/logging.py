"""Logging setup (structlog): console for terminals, JSON for daemons, secrets redacted.

Redaction is one processor: values under sensitive keys are masked, and any string that
contains a known secret value (registered by whoever holds it) has it replaced. Standard
library logs (SDKs, urllib3) go through the same processors.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any

import structlog

SENSITIVE_KEY = re.compile(r"token|secret|password|authorization|api_key|client_secret", re.I)
BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I)
# Secrets inside free text: `refresh_token=...` (query strings, form bodies) and
# `"access_token": "..."` (JSON bodies), as SDKs and exceptions print them.
ASSIGNED = re.compile(r"\b(\w*(?:token|secret|password)\w*)=[^\s&\"',;]+", re.I)
JSON_ASSIGNED = re.compile(r'("\w*(?:token|secret|password)\w*"\s*:\s*)"[^"]*"', re.I)
MASK = "***"


class Redactor:
    """A structlog processor that hides secrets; `remember()` registers a secret value."""

    # Every token refresh registers new values and rotated ones are dead: keep the most recent
    # ones only, so a long-running daemon neither grows nor slows down.
    MAX_VALUES = 2048

    def __init__(self) -> None:
        self._values: dict[str, None] = {}  # insertion-ordered: the oldest go first
        self._lock = threading.Lock()

    def remember(self, *values: str | None) -> None:
        with self._lock:
            for value in values:
                if value and len(value) >= 6:
                    self._values.pop(value, None)
                    self._values[value] = None
            while len(self._values) > self.MAX_VALUES:
                del self._values[next(iter(self._values))]

    def __call__(self, _logger: Any, _name: str, event: dict) -> dict:
        return {key: self._clean(key, value) for key, value in event.items()}

    def _clean(self, key: str, value: Any) -> Any:
        if key != "event" and SENSITIVE_KEY.search(key) and value:
            return MASK
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self._clean(key, v) for v in value)
        return value

    def rendered(self, _logger: Any, _name: str, line: Any) -> Any:
        """The last processor: scrub the rendered line, tracebacks included."""
        return self.scrub(line) if isinstance(line, str) else line

    def scrub(self, text: str) -> str:
        text = BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
        text = ASSIGNED.sub(lambda m: f"{m.group(1)}={MASK}", text)
        text = JSON_ASSIGNED.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
        with self._lock:
            known = tuple(self._values)
        for secret in known:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


REDACTOR = Redactor()


def configure_logging(level: str = "info", fmt: str = "console", stream=None) -> Redactor:
    """Configure structlog and the stdlib root logger once, for the CLI or the daemon."""
    stream = stream or sys.stderr
    head = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    shared = [*head, REDACTOR]
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # `extra=` keys are added before the redactor sees the event, so they are masked too.
        foreign_pre_chain=[*head, structlog.stdlib.ExtraAdder(), REDACTOR],
        # Exceptions are rendered after the redactor ran on the event: scrub the final line.
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer, REDACTOR.rendered],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "requests_oauthlib", "oauthlib", "aiosmtplib", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return REDACTOR
