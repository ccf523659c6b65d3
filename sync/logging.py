"""Logging setup (structlog): console for terminals, JSON for daemons, secrets redacted.

Redaction is one processor: values under sensitive keys are masked, and any string that
contains a known secret value (registered by whoever holds it) has it replaced. Standard
library logs (SDKs, urllib3) go through the same processors.

structlog itself (with rich, attrs and pygments behind it, a tenth of `arsync status`'s
start) is loaded only by a command that logs: `configure_logging` sets up the standard
library's handler at once and configures structlog the moment something first imports it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

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
    """Configure the stdlib root logger and structlog once, for the CLI or the daemon.

    structlog is configured now if it is loaded, otherwise right after its first import,
    before anyone can log through it.
    """
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_RenderedOnFirstUse(fmt, stream))
    handler.addFilter(_lost_store_connection)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # fontTools logs every font subsetting step at info: ~40 lines per PDF statement
    for noisy in ("urllib3", "requests_oauthlib", "oauthlib", "aiosmtplib", "alembic", "fontTools"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    if "structlog" in sys.modules:
        _configure_structlog()
    elif not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("structlog", _configure_structlog))
    return REDACTOR


# What SQLAlchemy's pool says, with a traceback at error level, when it returns a connection
# the store has already dropped (PostgreSQL restarted, the backend terminated): the pool
# discards it and the next checkout opens a new one, so nothing failed.
_POOL_LOSS = ("Exception during reset or similar", "Exception closing connection")


def _lost_store_connection(record: logging.LogRecord) -> bool:
    """Turn the pool's traceback for a dropped connection into one warning line naming why."""
    if record.name.startswith("sqlalchemy.pool") and record.msg in _POOL_LOSS and record.exc_info:
        error = record.exc_info[1]
        said = str(error).strip()
        why = said.splitlines()[0] if said else type(error).__name__
        record.msg, record.args = "store connection lost; the pool opens a new one (%s)", (why,)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
    return True


def _head() -> list:
    import structlog

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _configure_structlog() -> None:
    """structlog's events go through the redactor, then to the stdlib handler's renderer."""
    import structlog

    structlog.configure(
        processors=[
            # events under the root's level are dropped before any processing (a sync logs
            # every page at info; a warning-level run rendered and redacted each for nothing)
            structlog.stdlib.filter_by_level,
            *_head(),
            REDACTOR,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


class _RenderedOnFirstUse(logging.Formatter):
    """structlog's ProcessorFormatter for `fmt`, built (and structlog loaded) at the first record."""

    def __init__(self, fmt: str, stream) -> None:
        super().__init__()
        self._fmt_name, self._stream = fmt, stream
        self._formatter: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._formatter is None:
            self._formatter = _processor_formatter(self._fmt_name, self._stream)
        return self._formatter.format(record)


def _processor_formatter(fmt: str, stream) -> logging.Formatter:
    import structlog

    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # A stdlib record's exception (uvicorn's "Exception in ASGI application") reaches the JSON
    # renderer as a tuple it can only repr, traceback lost: render it as text first. The
    # console renderer prints it itself.
    exceptions = [structlog.processors.format_exc_info] if fmt == "json" else []
    return structlog.stdlib.ProcessorFormatter(
        # `extra=` keys are added before the redactor sees the event, so they are masked too.
        foreign_pre_chain=[*_head(), structlog.stdlib.ExtraAdder(), REDACTOR],
        # Exceptions are rendered after the redactor ran on the event: scrub the final line.
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exceptions,
            renderer,
            REDACTOR.rendered,
        ],
    )


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds no module itself: runs `then` right after the module `name` is first imported."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name, self.then = name, then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # the real finders find it; this one is done
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _Then(spec.loader, self.then)
        return spec


class _Then(importlib.abc.Loader):
    """A module's own loader, and `then` once the module has run."""

    def __init__(self, loader: importlib.abc.Loader, then: Callable[[], None]) -> None:
        self.loader, self.then = loader, then

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        self.then()

    def __getattr__(self, name: str):  # resource readers and the rest: the module's own loader's
        return getattr(self.loader, name)
