"""Redaction of secrets in logs, and encryption of tokens at rest."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
import structlog

from store.crypto import SecretBox, SecretKeyError
from sync.logging import configure_logging


def test_json_logs_redact_sensitive_keys_and_known_values():
    stream = io.StringIO()
    redactor = configure_logging("info", "json", stream=stream)
    redactor.remember("sekret-refresh-value-123")
    log = structlog.get_logger("t")
    log.info(
        "auth.refreshed",
        access_token="abc.def.ghi",
        company="acme",
        detail="got sekret-refresh-value-123 back",
    )
    logging.getLogger("urllib3.x").warning("header Authorization: Bearer eyJhbGciOi.payload.sig")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "auth.refreshed"
    assert lines[0]["access_token"] == "***"
    assert lines[0]["company"] == "acme"
    assert "sekret-refresh-value-123" not in stream.getvalue()
    assert "eyJhbGciOi" not in stream.getvalue()
    assert "Bearer ***" in lines[1]["event"]


def test_json_logs_keep_the_traceback_of_a_stdlib_records_exception():
    """uvicorn logs "Exception in ASGI application" through the stdlib with exc_info: the JSON
    line carries the traceback as text (it was a repr of the traceback object), scrubbed."""
    stream = io.StringIO()
    redactor = configure_logging("info", "json", stream=stream)
    redactor.remember("sekret-in-a-traceback-456")
    try:
        raise RuntimeError("failed with sekret-in-a-traceback-456")
    except RuntimeError:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=True)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "Exception in ASGI application" and line["level"] == "error"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "RuntimeError: failed with ***" in line["exception"]
    assert "traceback object" not in stream.getvalue() and "sekret-in-a-traceback" not in stream.getvalue()


def test_tokens_are_unreadable_without_the_key():
    sealed = SecretBox("correct horse battery staple").seal("refresh-token-value")
    assert "refresh-token-value" not in sealed
    assert SecretBox("correct horse battery staple").open(sealed) == "refresh-token-value"
    with pytest.raises(SecretKeyError, match="set ARSYNC_SECRET_KEY"):
        SecretBox(None).open(sealed)
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        SecretBox("another key").open(sealed)


def test_without_a_key_values_are_marked_plain():
    assert SecretBox(None).seal("t") == "plain:t"
    assert SecretBox("k").open("plain:t") == "t"


def test_structlog_loaded_after_logging_is_configured_still_redacts():
    """configure_logging leaves structlog unloaded; whoever imports it first finds it configured."""
    probe = (
        "import io, json, sys\n"
        "from sync.logging import configure_logging\n"
        "stream = io.StringIO()\n"
        "configure_logging('info', 'json', stream=stream).remember('sekret-refresh-value-123')\n"
        "unloaded = 'structlog' not in sys.modules\n"
        "import structlog\n"
        "log = structlog.get_logger('t')\n"
        "log.info('auth.refreshed', refresh_token='x1', note='sekret-refresh-value-123')\n"
        "print(json.dumps({'unloaded': unloaded, 'lines': stream.getvalue().splitlines()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["unloaded"] is True
    [line] = [json.loads(line) for line in outcome["lines"]]
    assert line["event"] == "auth.refreshed"
    assert line["refresh_token"] == "***"
    assert line["note"] == "***"


def test_events_under_the_level_are_not_written():
    stream = io.StringIO()
    configure_logging("warning", "json", stream=stream)
    log = structlog.get_logger("t")
    log.info("sync.page_stored", rows=1000)
    log.warning("sync.record_quarantined", ref="7", access_token="abc")
    logging.getLogger("urllib3.x").info("connection pool is full")
    [line] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (line["event"], line["level"]) == ("sync.record_quarantined", "warning")
    assert line["access_token"] == "***"
