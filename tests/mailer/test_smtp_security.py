"""STARTTLS with AUTH, implicit TLS, and a connection lost after the body was sent."""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import AuthResult, LoginPassword

from mailer.render import render_invitation
from mailer.results import Outcome
from mailer.smtp import SmtpTransport
from tests.mailer.conftest import FAST_RETRY, NOW, outgoing, start
from tests.mailer.smtp_server import HangsUpAfterData, LoopbackController, Recorder
from tests.mailer.tls import client_context, self_signed, server_context


def only(user: str, password: str):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    return authenticator


def test_starttls_and_login(tmp_path, sender, invitation):
    cert, key = self_signed(tmp_path)
    handler = Recorder()
    controller = LoopbackController(
        handler,
        tls_context=server_context(cert, key),
        require_starttls=True,
        auth_required=True,
        authenticator=only("mailer", "s3cret"),
    )
    controller.start()
    message = render_invitation(sender, invitation, key="i", now=NOW)
    try:
        good = SmtpTransport(
            "127.0.0.1", controller.port, "starttls", "mailer", "s3cret",
            tls_context=client_context(cert), retry=FAST_RETRY, timeout=5,
        )  # fmt: skip
        bad = SmtpTransport(
            "127.0.0.1", controller.port, "starttls", "mailer", "wrong",
            tls_context=client_context(cert), retry=FAST_RETRY, timeout=5,
        )  # fmt: skip
        [delivered] = asyncio.run(good.send_many(outgoing([message])))
        [refused] = asyncio.run(bad.send_many(outgoing([message])))
    finally:
        controller.stop()

    assert delivered.outcome is Outcome.DELIVERED
    assert len(handler.received) == 1
    # A refused login is the configuration's fault, not the message's: retry later.
    assert refused.outcome is Outcome.TRANSIENT
    assert "535" in refused.detail


def test_implicit_tls(tmp_path, sender, invitation):
    cert, key = self_signed(tmp_path)
    handler = Recorder()
    controller = LoopbackController(handler, ssl_context=server_context(cert, key))
    controller.start()
    try:
        transport = SmtpTransport(
            "127.0.0.1", controller.port, "tls", tls_context=client_context(cert), retry=FAST_RETRY, timeout=5
        )
        [result] = asyncio.run(
            transport.send_many(outgoing([render_invitation(sender, invitation, key="i", now=NOW)]))
        )
    finally:
        controller.stop()

    assert result.outcome is Outcome.DELIVERED
    assert len(handler.received) == 1


def test_connection_lost_after_the_body_is_in_doubt_and_not_retried(sender, invitation):
    handler = HangsUpAfterData()
    controller = start(handler)
    try:
        transport = SmtpTransport("127.0.0.1", controller.port, "none", retry=FAST_RETRY, timeout=5)
        [result] = asyncio.run(
            transport.send_many(outgoing([render_invitation(sender, invitation, key="i", now=NOW)]))
        )
    finally:
        controller.stop()

    assert result.outcome is Outcome.IN_DOUBT
    assert len(handler.received) == 1  # delivered once, and not retried
