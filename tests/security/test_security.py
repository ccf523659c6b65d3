"""SPEC 8, security: tokens encrypted at rest, hashed invitation tokens compared in constant
time, no account enumeration, every portal query scoped by company, no secrets in logs,
template autoescape and no header injection. Against the real store (SQLite and PostgreSQL),
the real mailer and, for logging, a real sync through the Xero simulator and its SDK.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import logging
import re
import secrets
import textwrap
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from connectors.base import Tokens
from connectors.registry import create_connector
from mailer.mails import InvitationMail, ReminderLine, ReminderMail, Sender
from mailer.outbox import parse
from mailer.render import render_invitation, render_reminder
from portal_rules.records import CustomerRecord, InvoiceRecord
from portal_rules.request_access import PUBLIC_ANSWER
from portal_rules.tokens import hash_token
from store import portal
from store.access_requests import record_access_request, requested_invites
from store.companies import CompanyRow, register_companies
from store.credentials import DbCredentials
from store.crypto import SecretBox, SecretKeyError
from store.db import make_engine, upgrade
from sync.app import App
from sync.cli import main
from sync.config import parse_config
from sync.invites import invite, issue_requested
from sync.logging import Redactor, configure_logging
from sync.mail import invitation_enqueuer
from sync.orchestrator import sync_company
from sync.settings import company_policy, connector_settings
from tests.sync.scripted import ScriptedSource

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday, 10:00 in New York
KEY = "security tests: correct horse battery staple"
EMAIL = "ap@cafe.example"
INVALID = "invalid invitation token"
# Two companies with the same customer refs, invoice refs and emails; only names and amounts differ.
AMOUNTS = {"acme": (Decimal("120.00"), Decimal("80.50")), "globex": (Decimal("7.77"), Decimal("1.01"))}


@pytest.fixture(autouse=True)
def _restore_logging():
    """Tests here configure logging; leave the root logger as they found it."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved
    structlog.reset_defaults()


def company_table(cid: str, **extra) -> dict:
    return {
        "id": cid,
        "name": f"{cid.title()} Co",
        "timezone": "America/New_York",
        "portal_url": f"https://portal.{cid}.example",
        "plan": "pro",
        "connection": {"kind": "scripted"},
        **extra,
    }


def records(cid: str):
    first, second = AMOUNTS[cid]
    customers = [
        CustomerRecord("1", f"{cid.title()} Customer One", True, (EMAIL,)),
        CustomerRecord("2", f"{cid.title()} Customer Two", True, ("two@x.example",)),
    ]
    invoices = [
        InvoiceRecord("10", "1", "INV-10", date(2026, 10, 1), date(2026, 10, 31), "USD", first, first, True),
        InvoiceRecord(
            "11", "1", "INV-11", date(2026, 11, 1), date(2026, 12, 20), "USD", second, second, True
        ),
        InvoiceRecord("20", "2", "INV-20", date(2026, 11, 1), date(2026, 11, 1), "USD", second, second, True),
    ]
    return customers, invoices


@pytest.fixture
def world(engine, store_url, tmp_path):
    """acme and globex synced into one store: same refs and emails, different names and amounts."""
    config = parse_config(
        {
            "store": {"url": store_url},
            "mail": {"transport": "file", "file_directory": str(tmp_path / "mail")},
            "companies": [company_table("acme"), company_table("globex")],
        }
    )
    register_companies(engine, [CompanyRow(c.id, c.name, c.timezone, "scripted") for c in config.companies])
    for company in config.companies:
        summary = sync_company(
            engine,
            company.id,
            company_policy(company),
            ScriptedSource(*records(company.id)),
            owner="t",
            clock=lambda: NOW,
        )
        assert summary.status == "ok", summary.error
    return config, engine


def outbox_tokens(engine, company_id: str) -> list[str]:
    """The invitation tokens mailed to `company_id`'s contacts, read from the stored messages."""
    with engine.connect() as connection:
        payloads = connection.scalars(
            text("SELECT payload FROM outbox WHERE company_id = :c AND kind = 'invitation' ORDER BY id"),
            {"c": company_id},
        ).all()
    tokens = []
    for payload in payloads:
        body = parse(payload).get_body(("plain",)).get_content()
        tokens.append(re.search(r"/invite/([A-Za-z0-9_\-]+)", body).group(1))
    return tokens


def invite_and_get_token(config, engine, company_id: str, customer_ref: str = "1") -> str:
    report = invite(engine, config, config.company(company_id), now=NOW, customer_ref=customer_ref)
    assert report.invited
    return outbox_tokens(engine, company_id)[-1]


def status_of(engine, company_id: str, customer_ref: str, address: str = EMAIL) -> str:
    with engine.connect() as connection:
        return connection.scalar(
            text(
                "SELECT status FROM portal_accounts"
                " WHERE company_id = :c AND customer_ref = :r AND email = :e"
            ),
            {"c": company_id, "r": customer_ref, "e": address},
        )


def every_stored_value(engine, skip: tuple[str, ...] = ()) -> str:
    """Every row of every table and view, as text (to search for a secret)."""
    out = []
    with engine.connect() as connection:
        names = inspect(connection).get_table_names() + inspect(connection).get_view_names()
        for name in names:
            if name in skip:
                continue
            for row in connection.execute(text(f"SELECT * FROM {name}")):
                out.append(" ".join(str(value) for value in row))
    return "\n".join(out)


def windows(secret: str, width: int = 10) -> set[str]:
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


# ---------------------------------------------------------------------------------------------
# (a) Tokens encrypted at rest


def test_saved_tokens_are_unreadable_in_the_connections_table(engine, store_url, monkeypatch):
    monkeypatch.setenv("ARSYNC_SECRET_KEY", KEY)
    config = parse_config({"store": {"url": store_url}, "companies": [company_table("acme")]})
    app = App.open(config)  # the key comes from the environment, as for the CLI and the daemon
    try:
        tokens = Tokens(
            access_token="at-" + secrets.token_urlsafe(32),
            refresh_token="rt-" + secrets.token_urlsafe(32),
            access_expires_at=NOW + timedelta(hours=1),
            refresh_expires_at=NOW + timedelta(days=100),
        )
        DbCredentials(app.engine, "acme", app.box).save(tokens)

        with engine.connect() as connection:
            row = (
                connection.execute(text("SELECT * FROM connections WHERE company_id = 'acme'"))
                .mappings()
                .one()
            )
        raw = " ".join(str(value) for value in row.values())
        for secret in (tokens.access_token, tokens.refresh_token):
            assert not any(piece in raw for piece in windows(secret)), "a token is readable at rest"
        assert row["access_token"].startswith("enc:v1:") and row["refresh_token"].startswith("enc:v1:")
        assert tokens.access_token not in every_stored_value(engine)

        assert DbCredentials(app.engine, "acme", app.box).load() == tokens
        with pytest.raises(SecretKeyError, match="cannot be decrypted"):
            DbCredentials(app.engine, "acme", SecretBox("a different key")).load()
        with pytest.raises(SecretKeyError, match="set ARSYNC_SECRET_KEY"):
            DbCredentials(app.engine, "acme", SecretBox(None)).load()
    finally:
        app.close()


# ---------------------------------------------------------------------------------------------
# (b) Invitation tokens: stored only as a hash, compared exactly


def test_invitation_tokens_are_stored_only_as_hashes(world):
    config, engine = world
    token = invite_and_get_token(config, engine, "acme")
    assert len(token) >= 43  # 32 random bytes, URL-safe

    assert token not in every_stored_value(engine, skip=("outbox",))
    assert not any(piece in every_stored_value(engine, skip=("outbox",)) for piece in windows(token, 16))
    with engine.connect() as connection:
        hashes = connection.scalars(
            text("SELECT token_hash FROM invitations WHERE company_id = 'acme'")
        ).all()
    assert hashes == [hash_token(token)]


def flip(token: str, index: int) -> str:
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def test_only_the_exact_token_is_accepted(world):
    config, engine = world
    policy = company_policy(config.company("acme"))
    token = invite_and_get_token(config, engine, "acme")
    stored_hash = hash_token(token)
    near_misses = [
        *(flip(token, i) for i in (0, len(token) // 2, len(token) - 1)),
        token[:-1],
        token + "A",
        token.swapcase(),
        stored_hash,  # what the table holds is not a token
        stored_hash[:32],
        stored_hash.upper(),
        "",
    ]
    for attempt in near_misses:
        assert portal.accept_invitation(engine, "acme", attempt, policy=policy, now=NOW) == INVALID, attempt
        assert status_of(engine, "acme", "1") == "pending"
    assert portal.accept_invitation(engine, "globex", token, policy=policy, now=NOW) == INVALID
    assert portal.accept_invitation(engine, "acme", token, policy=policy, now=NOW) is None
    assert status_of(engine, "acme", "1") == "enabled"


# ---------------------------------------------------------------------------------------------
# (c) Request access: the same answer, byte for byte, whatever happened


def ask(config, engine, address: str, at: datetime, company_id: str = "acme") -> str:
    company = config.company(company_id)
    return portal.request_access(
        engine,
        company_id,
        address,
        policy=company_policy(company),
        portal_url=company.portal_url,
        now=at,
        enqueue=invitation_enqueuer(config, company, now=at, automatic=False),
    )


def test_request_access_answers_are_identical(world):
    config, engine = world
    cases = {
        "known": (EMAIL, NOW),
        # more than `REPEAT_WINDOW` apart, so each is a resend (sooner, the first answers it)
        "known-other-case": (" AP@Cafe.Example ", NOW + timedelta(minutes=6)),
        "unknown": ("nobody@nowhere.example", NOW),
        "invalid": ("not an email", NOW),
        "empty": ("", NOW),
        "header-injection": ("x@y.example\r\nBcc: victim@z.example", NOW),
        "huge": ("a" * 5000 + "@x.example", NOW),
    }
    answers = {name: ask(config, engine, address, at).encode() for name, (address, at) in cases.items()}
    for minute in (12, 18, 24, 30):  # the third, then past the per-email limit
        answers[f"limited-{minute}"] = ask(config, engine, EMAIL, NOW + timedelta(minutes=minute)).encode()
        answers[f"unknown-limited-{minute}"] = ask(
            config, engine, "nobody@nowhere.example", NOW + timedelta(minutes=minute)
        ).encode()
    assert set(answers.values()) == {PUBLIC_ANSWER.encode()}

    # ...while what happened did differ: invitations went to the known email only, within the limit.
    with engine.connect() as connection:
        mailed = connection.scalars(text("SELECT recipient FROM outbox WHERE company_id = 'acme'")).all()
    assert mailed == [EMAIL] * 3


def test_a_requested_invitation_is_issued_once_and_only_while_it_can_be(world):
    """The HTTP API records requests with their decision; the worker issues them
    (`issue_requested`). A request already served (the CLI, `request_access`) is not issued
    again, and one whose contact was enabled meanwhile is dropped, not re-invited."""
    config, engine = world
    acme = config.company("acme")
    assert ask(config, engine, EMAIL, NOW) == PUBLIC_ANSWER  # issued at once
    assert issue_requested(engine, config, acme, now=NOW) == 0
    assert len(outbox_tokens(engine, "acme")) == 1

    recorded = record_access_request(engine, "acme", EMAIL, now=NOW + timedelta(minutes=1))
    assert recorded is not None and requested_invites(engine, "acme") == [recorded]
    token = outbox_tokens(engine, "acme")[-1]
    assert portal.accept_invitation(engine, "acme", token, policy=company_policy(acme), now=NOW) is None
    assert issue_requested(engine, config, acme, now=NOW + timedelta(minutes=2)) == 0
    assert requested_invites(engine, "acme") == []
    assert len(outbox_tokens(engine, "acme")) == 1 and status_of(engine, "acme", "1") == "enabled"


def test_an_invitation_issued_after_the_request_answers_it(world):
    """A request recorded over HTTP while no worker runs, then the admin's `arsync invite`:
    the worker must not issue the old request too, which would supersede the admin's link
    and mail the contact a second time."""
    config, engine = world
    acme = config.company("acme")
    assert record_access_request(engine, "acme", EMAIL, now=NOW) is not None
    admin = invite(engine, config, acme, now=NOW + timedelta(minutes=1), customer_ref="1")
    assert admin.invited == [("1", EMAIL)]
    [token] = outbox_tokens(engine, "acme")
    assert issue_requested(engine, config, acme, now=NOW + timedelta(minutes=2)) == 0
    assert requested_invites(engine, "acme") == []
    assert outbox_tokens(engine, "acme") == [token]
    later = NOW + timedelta(minutes=3)
    assert portal.accept_invitation(engine, "acme", token, policy=company_policy(acme), now=later) is None


def test_several_waiting_requests_of_one_email_give_one_invitation(world):
    config, engine = world
    acme = config.company("acme")
    for minute in range(3):  # the per-email limit: three an hour
        assert record_access_request(engine, "acme", EMAIL, now=NOW + timedelta(minutes=minute))
    assert issue_requested(engine, config, acme, now=NOW + timedelta(minutes=5)) == 1
    assert requested_invites(engine, "acme") == []
    [token] = outbox_tokens(engine, "acme")
    later = NOW + timedelta(minutes=6)
    assert portal.accept_invitation(engine, "acme", token, policy=company_policy(acme), now=later) is None


def test_the_admins_invitation_answers_a_request_whatever_the_clocks(world):
    """The HTTP server's clock 10 minutes ahead of the admin's: the request is stamped later
    than the admin's invitation that followed it. Issued since is told by ids, not clocks."""
    config, engine = world
    acme = config.company("acme")
    assert record_access_request(engine, "acme", EMAIL, now=NOW + timedelta(minutes=10)) is not None
    admin = invite(engine, config, acme, now=NOW, customer_ref="1")
    assert admin.invited == [("1", EMAIL)]
    [token] = outbox_tokens(engine, "acme")
    assert issue_requested(engine, config, acme, now=NOW + timedelta(minutes=1)) == 0
    assert outbox_tokens(engine, "acme") == [token]
    later = NOW + timedelta(minutes=2)
    assert portal.accept_invitation(engine, "acme", token, policy=company_policy(acme), now=later) is None


def test_asking_again_a_moment_later_keeps_the_link_on_its_way(world):
    """A double click, or an impatient second try before the first mail arrived: the worker
    issued the first at once; the second must not supersede its link and mail again. Once
    `REPEAT_WINDOW` has passed, asking again is a resend (the first mail may be lost)."""
    config, engine = world
    acme = config.company("acme")
    for seconds in (0, 3):
        at = NOW + timedelta(seconds=seconds)
        assert record_access_request(engine, "acme", EMAIL, now=at) is not None
        issue_requested(engine, config, acme, now=at)
    [token] = outbox_tokens(engine, "acme")
    assert requested_invites(engine, "acme") == []

    resend = NOW + timedelta(minutes=6)
    assert record_access_request(engine, "acme", EMAIL, now=resend) is not None
    assert issue_requested(engine, config, acme, now=resend) == 1
    first, second = outbox_tokens(engine, "acme")
    assert first == token
    policy = company_policy(acme)
    assert portal.accept_invitation(engine, "acme", token, policy=policy, now=resend) == INVALID
    assert portal.accept_invitation(engine, "acme", second, policy=policy, now=resend) is None


def test_an_invitation_whose_mail_never_left_does_not_answer_a_request(world):
    """The first mail was refused (550): asking again a minute later gets a new one, not
    silence for the rest of the hour."""
    config, engine = world
    acme = config.company("acme")
    assert record_access_request(engine, "acme", EMAIL, now=NOW) is not None
    assert issue_requested(engine, config, acme, now=NOW) == 1
    with engine.begin() as connection:
        connection.execute(text("UPDATE outbox SET status = 'failed', last_error = '550 no such user'"))
    later = NOW + timedelta(minutes=1)
    assert record_access_request(engine, "acme", EMAIL, now=later) is not None
    assert issue_requested(engine, config, acme, now=later) == 1
    assert len(outbox_tokens(engine, "acme")) == 2


def test_an_automatic_invitation_waiting_for_the_window_does_not_hold_a_request(world):
    """Request-access mail ignores windows: an automatic invitation queued for the next
    opening is replaced by one mailed at once, and its own mail is dropped."""
    config, engine = world
    acme = config.company("acme")
    assert invite(engine, config, acme, now=NOW, customer_ref="1").invited == [("1", EMAIL)]
    with engine.begin() as connection:  # as `auto_invite` queues it: for the window
        connection.execute(text("UPDATE outbox SET automatic = :t"), {"t": True})
    later = NOW + timedelta(minutes=2)
    assert record_access_request(engine, "acme", EMAIL, now=later) is not None
    assert issue_requested(engine, config, acme, now=later) == 1
    with engine.connect() as connection:
        mails = connection.execute(text("SELECT automatic, status FROM outbox ORDER BY id")).all()
    assert [(bool(auto), status) for auto, status in mails] == [(True, "dropped"), (False, "queued")]


def test_a_request_an_earlier_release_recorded_is_judged_by_its_time(world):
    """A previous release's server still running after `db upgrade` records requests without
    the newest invitation id: an invitation from days before is not taken as issued since."""
    config, engine = world
    acme = config.company("acme")
    assert invite(engine, config, acme, now=NOW - timedelta(days=3), customer_ref="1").invited
    assert record_access_request(engine, "acme", EMAIL, now=NOW) is not None
    with engine.begin() as connection:
        connection.execute(text("UPDATE access_requests SET newest_invitation_id = NULL"))
    assert issue_requested(engine, config, acme, now=NOW) == 1


def test_request_access_through_the_cli_prints_the_same_answer(world, store_url, tmp_path, capsys):
    config_path = tmp_path / "arsync.toml"
    config_path.write_text(
        textwrap.dedent(f"""
        [store]
        url = "{store_url}"
        [mail]
        transport = "file"
        file_directory = "{tmp_path / "cli-mail"}"
        [[companies]]
        id = "acme"
        name = "Acme Co"
        timezone = "America/New_York"
        portal_url = "https://portal.acme.example"
        [companies.connection]
        kind = "scripted"
        """)
    )
    outcomes = []
    for step, address in enumerate([EMAIL, "nobody@nowhere.example", EMAIL, EMAIL, EMAIL, "x@y"]):
        at = (NOW + timedelta(minutes=6 * step)).isoformat()  # each a resend, not a repeat
        code = main(["--config", str(config_path), "portal", "request-access", "acme", address, "--now", at])
        outcomes.append((code, capsys.readouterr().out.encode()))
    assert set(outcomes) == {(0, PUBLIC_ANSWER.encode() + b"\n")}
    assert len(list((tmp_path / "cli-mail").glob("*.eml"))) == 3  # the limit held; stdout never said


# ---------------------------------------------------------------------------------------------
# (d) Every portal query is scoped by company


def test_one_company_never_sees_another_companys_data(world):
    config, engine = world
    for cid in ("acme", "globex"):
        token = invite_and_get_token(config, engine, cid)
        assert (
            portal.accept_invitation(engine, cid, token, policy=company_policy(config.company(cid)), now=NOW)
            is None
        )

    for mine, theirs in (("acme", "globex"), ("globex", "acme")):
        first, second = AMOUNTS[mine]
        shown = portal.visible_invoices(engine, mine, "1")
        assert [(i.invoice_ref, i.balance) for i in shown] == [("10", first), ("11", second)]
        assert not {i.balance for i in shown} & set(AMOUNTS[theirs])
        day = date(2026, 11, 20)
        assert portal.balances(engine, mine, "1", day) == portal.Balances(first + second, first)
        [account] = portal.reachable_accounts(
            engine, mine, EMAIL, policy=company_policy(config.company(mine))
        )
        assert (account.company_id, account.display_name) == (mine, f"{mine.title()} Customer One")

    # A token from one company opens nothing in the other, and changes nothing in either.
    token = invite_and_get_token(config, engine, "globex", customer_ref="2")
    acme_policy = company_policy(config.company("acme"))
    assert portal.accept_invitation(engine, "acme", token, policy=acme_policy, now=NOW) == INVALID
    assert status_of(engine, "acme", "2", "two@x.example") == "not_invited"
    assert status_of(engine, "globex", "2", "two@x.example") == "pending"

    # Request access for globex touches globex only.
    ask(config, engine, "two@x.example", NOW + timedelta(minutes=6), company_id="globex")  # a resend
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT company_id, email FROM invitations ORDER BY id")).all()
        requests = connection.execute(text("SELECT company_id, email FROM access_requests")).all()
    assert [tuple(r) for r in rows if r[1] == "two@x.example"] == [("globex", "two@x.example")] * 2
    assert [tuple(r) for r in requests] == [("globex", "two@x.example")]
    assert status_of(engine, "acme", "2", "two@x.example") == "not_invited"

    # Hiding globex's customers hides nothing of acme's.
    with engine.begin() as connection:
        connection.execute(text("UPDATE customers SET portal_visible = false WHERE company_id = 'globex'"))
    assert portal.visible_invoices(engine, "globex", "1") == []
    globex_policy = company_policy(config.company("globex"))
    assert portal.reachable_accounts(engine, "globex", EMAIL, policy=globex_policy) == []
    assert portal.balances(engine, "globex", "1", date(2026, 11, 20)).balance_due == 0
    assert len(portal.visible_invoices(engine, "acme", "1")) == 2
    assert len(portal.reachable_accounts(engine, "acme", EMAIL, policy=acme_policy)) == 1


def test_unknown_companies_and_customers_see_nothing(world):
    config, engine = world
    policy = company_policy(config.company("acme"))
    for company_id, ref in (("initech", "1"), ("", "1"), ("acme", "999"), ("acme' OR '1'='1", "1")):
        assert portal.visible_invoices(engine, company_id, ref) == []
        assert portal.balances(engine, company_id, ref, date(2026, 12, 31)).balance_due == 0
        assert portal.reachable_accounts(engine, company_id, EMAIL, policy=policy) == []


# ---------------------------------------------------------------------------------------------
# (e) No secrets in logs


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_log_events_never_carry_secret_values(sqlite_url):
    stream = io.StringIO()
    redactor = configure_logging("debug", "json", stream=stream)
    engine = make_engine(sqlite_url)
    upgrade(engine)
    register_companies(engine, [CompanyRow("acme", "Acme", "UTC", "scripted")])
    tokens = Tokens("at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(24), NOW)
    # whoever holds a token registers it with the redactor
    DbCredentials(engine, "acme", SecretBox(KEY), remember=redactor.remember).save(tokens)
    unregistered = "pw-" + secrets.token_urlsafe(16)
    log = structlog.get_logger("arsync.test")
    stdlib = logging.getLogger("some.sdk")

    log.info("auth.refreshed", access_token=tokens.access_token, refresh_token=tokens.refresh_token)
    log.info("http.request", headers={"Authorization": f"Bearer {tokens.access_token}"}, company="acme")
    log.info("http.request", headers=[("Authorization", f"Bearer {unregistered}")])
    log.info("smtp.login", settings={"smtp": {"password": unregistered}}, client_secret=unregistered)
    log.info("auth.detail", detail=f"rotated to {tokens.refresh_token}")
    stdlib.debug("POST /token body: grant_type=refresh_token&refresh_token=%s", tokens.refresh_token)
    stdlib.debug('response: {"access_token": "%s", "token_type": "Bearer"}', unregistered)
    stdlib.info("Authorization: Bearer %s", unregistered)
    stdlib.info("with extra", extra={"client_secret": unregistered, "company": "acme"})
    try:
        raise RuntimeError(f"refresh refused for {tokens.refresh_token} (Bearer {unregistered})")
    except RuntimeError:
        log.exception("sync.crashed", company="acme")
        stdlib.exception("sdk call failed")
    engine.dispose()

    lines = json_lines(stream)
    assert len(lines) == 11
    out = stream.getvalue()
    for secret in (tokens.access_token, tokens.refresh_token, unregistered):
        assert secret not in out
    assert lines[0]["access_token"] == "***" and lines[1]["company"] == "acme"
    assert "RuntimeError" in out  # the traceback is there, the token in it is not


def test_the_redactor_keeps_recent_secrets_without_growing_forever():
    """A daemon refreshes tokens for years: the newest values are always masked."""
    redactor = Redactor()
    values = [f"token-{i:06d}-{secrets.token_hex(4)}" for i in range(Redactor.MAX_VALUES + 500)]
    redactor.remember(*values)
    assert redactor.scrub(f"got {values[-1]} and {values[-Redactor.MAX_VALUES]}") == "got *** and ***"


def test_a_real_sync_with_a_token_refresh_logs_no_secret(sqlite_url, monkeypatch):
    from connectors.simulators.generator import sample_company
    from connectors.simulators.xero import XeroSimulator
    from connectors.simulators.xero_limits import XeroLimits

    company_data = sample_company("xero", today=date.today() - timedelta(days=1))
    with XeroSimulator([company_data], limits=XeroLimits(per_minute=10_000, per_day=100_000)) as sim:
        monkeypatch.setenv("GLOBEX_XERO_SECRET", sim.tokens.client_secret)
        config = parse_config(
            {
                "store": {"url": sqlite_url},
                "log": {"level": "debug", "format": "json"},
                "companies": [
                    company_table(
                        "globex",
                        connection={
                            "kind": "xero",
                            "tenant_id": company_data.id,
                            "client_id": sim.tokens.client_id,
                            "client_secret_env": "GLOBEX_XERO_SECRET",
                            "api_base_url": sim.accounting_url,
                            "token_url": sim.token_url,
                        },
                    )
                ],
            }
        )
        stream = io.StringIO()
        redactor = configure_logging(config.log.level, config.log.format, stream=stream)
        company = config.company("globex")
        engine = make_engine(sqlite_url)
        upgrade(engine)
        register_companies(engine, [CompanyRow("globex", company.name, company.timezone, "xero")])
        redactor.remember(company.connection.client_secret())  # as sync.runner does before a sync
        credentials = DbCredentials(
            engine, "globex", SecretBox(KEY), remember=redactor.remember, lock_wait=10
        )
        first = sim.tokens.issue()
        expired = datetime.now(UTC) - timedelta(minutes=5)  # forces a refresh before the first call
        credentials.save(Tokens(first.access_token, first.refresh_token, expired))

        connector = create_connector(
            connector_settings(company, options={"retry_base_wait": 0.01}), credentials
        )
        summary = sync_company(engine, "globex", company_policy(company), connector, owner="t")
        rotated = credentials.load()
        engine.dispose()

    assert summary.status == "ok", summary.error
    assert summary.invoices > 0
    assert rotated.refresh_token != first.refresh_token  # the refresh happened
    lines = json_lines(stream)
    assert any(line["event"] == "sync.finished" for line in lines)
    out = stream.getvalue()
    for secret in (first.access_token, first.refresh_token, rotated.access_token, rotated.refresh_token):
        assert secret not in out
    assert sim.tokens.client_secret not in out


# ---------------------------------------------------------------------------------------------
# (f) Autoescape and no header injection from customer (or company) names

SENDER_NAME = "Acme <b>Billing</b>\r\nBcc: boss@evil.example"
EXPECTED_HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}
hostile_names = st.lists(
    st.sampled_from(["a", "é", " ", "<", ">", '"', "'", "&", "\r", "\n", "\r\n", "\t", "\x00", "\x85",
                     "\u2028", ":", ";", ",", "@", "=?utf-8?q?x?=", "Bcc: x@evil.example",
                     "<script>alert(1)</script>", "\r\nSubject: spoofed"]),
    max_size=8,
).map("".join)  # fmt: skip


def received(message) -> email.message.EmailMessage:
    return email.message_from_bytes(message.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)


def assert_safe(message, kind_headers: set[str]) -> None:
    """Only the headers we set, one recipient, and no markup from names in the HTML part."""
    got = received(message)
    assert set(got.keys()) == kind_headers, got.keys()
    assert [a.addr_spec for a in got["To"].addresses] == ["zoe@cafe.example"]
    assert [a.addr_spec for a in got["From"].addresses] == ["billing@acme.example"]
    for name in got:
        assert "\n" not in str(got[name]) and "\r" not in str(got[name])
    html = got.get_body(("html",)).get_content()
    assert "<script" not in html and "<b>" not in html


@settings(max_examples=100, deadline=None)
@given(customer=hostile_names)
def test_invitation_mail_from_hostile_names(customer):
    sender = Sender("acme", SENDER_NAME, "billing@acme.example")
    mail = InvitationMail(
        customer + "<script>alert(1)</script>", "zoe@cafe.example", "https://p.example", "t", 14
    )
    message = render_invitation(sender, mail, key="invitation:1", now=NOW)
    assert_safe(message, EXPECTED_HEADERS)
    html = received(message).get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@settings(max_examples=100, deadline=None)
@given(customer=hostile_names, doc=hostile_names)
def test_reminder_mail_from_hostile_names(customer, doc):
    sender = Sender("acme", SENDER_NAME, "billing@acme.example")
    mail = ReminderMail(
        customer_name=customer + "\r\nBcc: victim@evil.example",
        recipients=("zoe@cafe.example",),
        portal_url="https://p.example",
        items=(ReminderLine("<script>alert(1)</script>" + doc, date(2026, 11, 1), Decimal("12.50"), "USD"),),
        today=NOW.date(),
    )
    message = render_reminder(sender, mail, key="reminder:1", now=NOW)
    assert_safe(message, EXPECTED_HEADERS | {"Auto-Submitted"})
    html = received(message).get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_long_company_name_with_specials_stays_one_from_address():
    """Found by fuzzing company names: folded, the display name lost its quotes and
    `Name, Inc.: Billing; ...` parsed as an address group, so the From header did not parse."""
    name = "Acme Landscaping and Garden Supplies, Incorporated: Billing Department; Accounts Receivable"
    mail = InvitationMail("Zoe", "zoe@cafe.example", "https://p.example", "t", 14)
    message = render_invitation(
        Sender("acme", name, "billing@acme.example"), mail, key="invitation:1", now=NOW
    )
    assert_safe(message, EXPECTED_HEADERS)
    assert "Acme Landscaping" in received(message)["From"].addresses[0].display_name


def test_an_address_with_a_line_break_is_refused_not_injected():
    sender = Sender("acme", "Acme", "billing@acme.example")
    mail = InvitationMail("Zoe", "zoe@cafe.example\r\nBcc: victim@evil.example", "https://p.example", "t", 14)
    with pytest.raises(ValueError):
        render_invitation(sender, mail, key="invitation:1", now=NOW)
