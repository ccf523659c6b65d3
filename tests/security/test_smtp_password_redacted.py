"""The SMTP password is a secret like a client secret or a token: once the transport holding
it is built, any log line that carries it (a library's debug output of the AUTH exchange, an
error that quotes it) shows `***` instead. It was the one secret never registered."""

from __future__ import annotations

import io
import json
import logging
from types import SimpleNamespace

from sync.config import MailConfig
from sync.logging import configure_logging
from sync.mail import transport


def test_the_smtp_password_is_masked_in_every_log_line_once_the_transport_is_built(monkeypatch):
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "hunter2-smtp-pass")
    mail = MailConfig(transport="smtp", smtp_username="billing", smtp_password_env="TEST_SMTP_PASSWORD")

    transport(SimpleNamespace(mail=mail))  # it reads the configuration's [mail] table only
    logging.getLogger("aiosmtplib").warning("auth failed for billing:%s", "hunter2-smtp-pass")
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "auth failed for billing:***"
    assert "hunter2" not in stream.getvalue()
