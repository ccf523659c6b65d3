"""Invitations, request access, acceptance, reminders and company isolation, end to end
through the store, the rules and the outbox (file transport), on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from mailer.dispatch import dispatch
from mailer.transports import FileTransport
from portal_rules.records import CustomerRecord, InvoiceRecord
from portal_rules.request_access import PUBLIC_ANSWER
from store import admin, portal
from store.companies import CompanyRow, register_companies
from sync.config import parse_config
from sync.invites import invite
from sync.mail import invitation_enqueuer, window_for
from sync.orchestrator import sync_company
from sync.reminders import plan_reminders
from sync.settings import company_policy
from tests.sync.scripted import ScriptedSource

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday, 10:00 in New York


def make_config(store_url: str, mail_dir: Path, **overrides) -> object:
    def company(cid: str) -> dict:
        return {
            "id": cid,
            "name": f"{cid.title()} Co",
            "timezone": "America/New_York",
            "portal_url": f"https://portal.{cid}.example",
            "plan": "pro",
            "connection": {"kind": "scripted"},
            **overrides,
        }

    return parse_config(
        {
            "store": {"url": store_url},
            "mail": {"transport": "file", "file_directory": str(mail_dir)},
            "companies": [company("acme"), company("globex")],
        }
    )


def records():
    customers = [
        CustomerRecord("1", "Café <b>Müller</b>", True, ("ap@cafe.example",)),
        CustomerRecord("2", "Shared Two", True, ("shared@x.example",)),
        CustomerRecord("3", "Shared Three", True, ("shared@x.example",)),
    ]
    invoices = [
        InvoiceRecord(
            "10",
            "1",
            "INV-10",
            date(2026, 10, 1),
            date(2026, 10, 31),
            "USD",
            Decimal("120.00"),
            Decimal("120.00"),
            True,
        ),
        InvoiceRecord(
            "11",
            "1",
            "INV-11",
            date(2026, 11, 1),
            date(2026, 11, 20),
            "USD",
            Decimal("80.50"),
            Decimal("80.50"),
            True,
        ),
        InvoiceRecord(
            "12",
            "1",
            "INV-12",
            date(2026, 11, 1),
            date(2026, 12, 30),
            "USD",
            Decimal("9.99"),
            Decimal("9.99"),
            True,
        ),
        InvoiceRecord(
            "20",
            "2",
            "INV-20",
            date(2026, 11, 1),
            date(2026, 11, 1),
            "USD",
            Decimal("5.00"),
            Decimal("5.00"),
            False,
        ),
    ]
    return customers, invoices


@pytest.fixture
def world(engine, store_url, tmp_path):
    config = make_config(store_url, tmp_path / "mail")
    register_companies(engine, [CompanyRow(c.id, c.name, c.timezone, "scripted") for c in config.companies])
    for company in config.companies:
        customers, invoices = records()
        summary = sync_company(
            engine,
            company.id,
            company_policy(company),
            ScriptedSource(customers, invoices),
            owner="t",
            clock=lambda: NOW,
        )
        assert summary.status == "ok", summary.error
    return config, engine, tmp_path / "mail"


def send_all(engine, config, mail_dir, now=NOW):
    return dispatch(engine, FileTransport(mail_dir), now=now, window_for=window_for(config), worker_id="t")


def mails(mail_dir: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(mail_dir.glob("*.eml"))
    ]


def token_from(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"/invite/([A-Za-z0-9_\-]+)", body).group(1)


def test_invite_accept_and_login(world):
    config, engine, mail_dir = world
    acme = config.company("acme")
    report = invite(engine, config, acme, now=NOW, customer_ref="1")
    assert report.invited == [("1", "ap@cafe.example")]
    assert send_all(engine, config, mail_dir).sent
    [message] = mails(mail_dir)
    assert message["To"].addresses[0].addr_spec == "ap@cafe.example"
    assert "https://portal.acme.example/invite/" in message.get_body(("plain",)).get_content()
    token = token_from(message)
    with engine.connect() as c:
        assert c.scalar(text("SELECT COUNT(*) FROM invitations WHERE token_hash = :t"), {"t": token}) == 0
        assert (
            c.scalar(
                text("SELECT status FROM portal_accounts WHERE email='ap@cafe.example' AND company_id='acme'")
            )
            == "pending"
        )
    policy = company_policy(acme)
    assert (
        portal.accept_invitation(engine, "globex", token, policy=policy, now=NOW)
        == "invalid invitation token"
    )
    assert portal.accept_invitation(engine, "acme", token, policy=policy, now=NOW) is None
    assert (
        portal.accept_invitation(engine, "acme", token, policy=policy, now=NOW) == "invalid invitation token"
    )
    [account] = portal.reachable_accounts(engine, "acme", " AP@Cafe.Example ", policy=policy)
    assert (account.customer_ref, account.display_name, account.status) == (
        "1",
        "Café <b>Müller</b>",
        "enabled",
    )
    assert portal.reachable_accounts(engine, "globex", "ap@cafe.example", policy=policy) == []


def test_a_new_invitation_supersedes_and_tokens_expire(world):
    config, engine, mail_dir = world
    acme = config.company("acme")
    policy = company_policy(acme)
    invite(engine, config, acme, now=NOW, customer_ref="1")
    send_all(engine, config, mail_dir)
    first = token_from(mails(mail_dir)[0])
    later = NOW + timedelta(minutes=5)
    invite(engine, config, acme, now=later, customer_ref="1")
    send_all(engine, config, mail_dir, later)
    second = next(t for t in map(token_from, mails(mail_dir)) if t != first)
    assert (
        portal.accept_invitation(engine, "acme", first, policy=policy, now=later)
        == "invalid invitation token"
    )
    expired = later + timedelta(days=acme.invitation_ttl_days, seconds=1)
    assert (
        portal.accept_invitation(engine, "acme", second, policy=policy, now=expired)
        == "invalid invitation token"
    )
    assert portal.accept_invitation(engine, "acme", second, policy=policy, now=later) is None


def test_request_access_answers_alike_and_is_rate_limited(world):
    config, engine, mail_dir = world
    acme = config.company("acme")
    policy = company_policy(acme)

    def ask(address: str, at: datetime) -> str:
        return portal.request_access(
            engine,
            "acme",
            address,
            policy=policy,
            portal_url=acme.portal_url,
            now=at,
            enqueue=invitation_enqueuer(config, acme, now=at, automatic=False),
        )

    assert ask("nobody@nowhere.example", NOW) == PUBLIC_ANSWER
    assert ask("AP@cafe.example", NOW) == PUBLIC_ANSWER
    send_all(engine, config, mail_dir)
    assert [m["To"].addresses[0].addr_spec for m in mails(mail_dir)] == ["ap@cafe.example"]
    for minute in (6, 12, 18, 24):  # each past `REPEAT_WINDOW`: a resend, not a repeat
        assert ask("ap@cafe.example", NOW + timedelta(minutes=minute)) == PUBLIC_ANSWER
    send_all(engine, config, mail_dir, NOW + timedelta(minutes=25))
    # Two more invitations were issued (then the limit held); the second superseded the first
    # before it left the outbox, so only the newest link is mailed.
    assert len(mails(mail_dir)) == 2
    with engine.connect() as c:
        dropped = c.execute(text("SELECT last_error FROM outbox WHERE status = 'dropped'")).scalars().all()
    assert dropped == ["superseded by a newer invitation"]


def test_shared_email_conflict_in_single_account_mode(engine, store_url, tmp_path):
    config = make_config(store_url, tmp_path / "mail", multi_account_portal=False)
    register_companies(engine, [CompanyRow("acme", "Acme", "America/New_York", "scripted")])
    acme = config.company("acme")
    customers, invoices = records()
    sync_company(
        engine,
        "acme",
        company_policy(acme),
        ScriptedSource(customers, invoices),
        owner="t",
        clock=lambda: NOW,
    )
    assert admin.conflicts(engine, "acme") == {"shared@x.example": [("2", "not_invited"), ("3", "conflict")]}
    admin.switch_contact(engine, "acme", "2", "shared@x.example", enable=False, policy=company_policy(acme))
    assert admin.conflicts(engine, "acme") == {}
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT customer_ref, status, eligible FROM portal_accounts "
                "WHERE email='shared@x.example' ORDER BY customer_ref"
            )
        ).all()
    assert [(r[0], r[1], bool(r[2])) for r in rows] == [("2", "disabled", False), ("3", "not_invited", True)]


def test_shared_email_reaches_both_accounts_in_multi_account_mode(world):
    config, engine, mail_dir = world
    acme = config.company("acme")
    invite(engine, config, acme, now=NOW, customer_ref="2")
    send_all(engine, config, mail_dir)
    token = token_from(mails(mail_dir)[0])
    assert portal.accept_invitation(engine, "acme", token, policy=company_policy(acme), now=NOW) is None
    reached = portal.reachable_accounts(engine, "acme", "shared@x.example", policy=company_policy(acme))
    refs = [a.customer_ref for a in reached]
    assert refs == ["2", "3"]


def test_balances_and_past_due_for_a_day(world):
    _, engine, _ = world
    on_due_day = portal.balances(engine, "acme", "1", date(2026, 11, 20))
    assert on_due_day.balance_due == Decimal("210.49")
    assert on_due_day.past_due_amount == Decimal("120.00")
    assert on_due_day.past_due
    assert [i.invoice_ref for i in portal.visible_invoices(engine, "acme", "1")] == ["10", "11", "12"]
    assert portal.visible_invoices(engine, "acme", "2") == []  # unsent
    assert portal.balances(engine, "acme", "2", date(2026, 12, 1)).balance_due == Decimal("0")


def test_mark_sent_overrides_and_reaches_balances(world):
    _, engine, _ = world
    assert admin.set_sent_override(engine, "acme", "20", True).hidden is None  # now shown
    assert portal.balances(engine, "acme", "2", date(2026, 11, 20)).balance_due == Decimal("5.00")
    assert portal.balances(engine, "globex", "2", date(2026, 11, 20)).balance_due == Decimal("0")
    assert admin.set_sent_override(engine, "acme", "10", False).hidden == "unsent"
    assert [i.invoice_ref for i in portal.visible_invoices(engine, "acme", "1")] == ["11", "12"]


def test_reminders_once_per_offset_grouped_per_customer(world):
    config, engine, mail_dir = world
    acme = config.company("acme")
    first = plan_reminders(engine, config, acme, now=NOW)
    [planned] = first.planned
    assert planned.customer_ref == "1"
    assert planned.invoices == (("INV-10", 14), ("INV-11", 0))  # latest offset only for INV-10
    assert first.skipped == 4  # INV-10: -3, 0, 7 and INV-11: -3 were never sent: recorded as skipped
    assert plan_reminders(engine, config, acme, now=NOW + timedelta(hours=1)).planned == []
    send_all(engine, config, mail_dir)
    [message] = mails(mail_dir)
    body = message.get_body(("plain",)).get_content()
    assert "INV-10" in body and "INV-11" in body and "INV-12" not in body
    html = message.get_body(("html",)).get_content()
    assert "<b>Müller</b>" not in html and "&lt;b&gt;" in html
    admin.set_reminders_paused(engine, "acme", "1", True)
    assert plan_reminders(engine, config, acme, now=NOW + timedelta(days=7)).planned == []


def test_automatic_reminders_wait_for_the_window(world):
    config, engine, mail_dir = world
    saturday = NOW + timedelta(days=1)
    plan = plan_reminders(engine, config, config.company("acme"), now=saturday)
    assert plan.planned[0].send_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # Monday 09:00 New York
    assert send_all(engine, config, mail_dir, saturday).sent == []
    assert len(send_all(engine, config, mail_dir, datetime(2026, 11, 23, 14, 0, tzinfo=UTC)).sent) == 1


def test_one_company_never_reaches_another_companys_portal(world):
    _, engine, _ = world
    assert portal.visible_invoices(engine, "globex", "1")[0].invoice_ref == "10"
    with engine.begin() as c:
        c.execute(text("UPDATE customers SET portal_visible = false WHERE company_id = 'globex'"))
    assert portal.visible_invoices(engine, "globex", "1") == []
    assert len(portal.visible_invoices(engine, "acme", "1")) == 3
