"""Branded mail through the CLI: colour, logo and a "View and pay" button in the HTML part;
the plain-text part exactly as without a brand; names still escaped; bad values exit 2."""

from __future__ import annotations

import json
import re
from datetime import date
from email.message import EmailMessage

import pytest

from tests.endtoend.mail.conftest import COMPANY, FRIDAY_10AM, INVITE_LINK, PORTAL, customer, invoice, iso

BRAND = {"brand_color": "#0b8043", "logo_url": "https://cdn.acme.example/logo.png?v=2&size=96"}
NAME = 'Café <b>"Müller"</b> & Söhne'


def send_both(shop, smtp) -> dict[str, EmailMessage]:
    """An invitation and a reminder to the same customer, delivered to the SMTP server."""
    shop.sync(
        [customer("1", NAME, "ap@cafe.example")],
        [invoice("10", "1", date(2026, 10, 31), "120.00"), invoice("11", "1", date(2026, 11, 20), "80.50")],
    )
    now = iso(FRIDAY_10AM)
    assert shop.cli("invite", COMPANY, "--customer", "1", "--now", now).code == 0
    assert shop.cli("reminders", "plan", "--now", now).code == 0
    assert shop.cli("mail", "dispatch", "--now", now).code == 0
    received = {m["Subject"]: m for m in smtp.messages()}
    assert len(received) == 2
    return {
        "invitation": next(m for s, m in received.items() if s.startswith("Welcome")),
        "reminder": next(m for s, m in received.items() if not s.startswith("Welcome")),
    }


def parts(message: EmailMessage) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def button(html: str) -> re.Match:
    found = re.search(r'<a class="button" href="([^"]+)" style="([^"]+)">View and pay</a>', html)
    assert found, html
    return found


def test_branded_mails_carry_colour_logo_and_a_view_and_pay_button(make_shop, sqlite_url, smtp):
    shop = make_shop(sqlite_url, **BRAND)
    mails = send_both(shop, smtp)
    for kind, message in mails.items():
        text, html = parts(message)
        href, style = button(html).groups()
        assert "background-color: #0b8043;" in html and "color: #ffffff;" in style
        assert '<img class="logo" src="https://cdn.acme.example/logo.png?v=2&amp;size=96"' in html
        assert "Café &lt;b&gt;&#34;Müller&#34;&lt;/b&gt; &amp; Söhne" in html  # autoescape kept
        assert "<b>" not in html
        if kind == "invitation":
            assert INVITE_LINK.fullmatch(href)
        else:
            assert href == PORTAL and "Past Due" in html
        assert "#0b8043" not in text and "logo" not in text and "View and pay" not in text


@pytest.mark.parametrize("brand", [{}, {"brand_color": "#fd0"}], ids=["default", "light-colour"])
def test_plain_text_is_unchanged_by_the_brand(make_shop, sqlite_url, smtp, tmp_path, brand):
    branded = send_both(make_shop(sqlite_url, **BRAND), smtp)
    smtp.recorder.received.clear()
    other = send_both(make_shop(f"sqlite:///{tmp_path / 'other.db'}", **brand), smtp)
    for kind in ("invitation", "reminder"):
        ours, theirs = parts(branded[kind])[0], parts(other[kind])[0]
        assert INVITE_LINK.sub("LINK", ours) == INVITE_LINK.sub("LINK", theirs)
        html = parts(other[kind])[1]
        assert "<img" not in html  # no logo configured: the company name heads the mail
        _, style = button(html).groups()
        text_colour = "#000000" if brand else "#ffffff"  # black reads better on a light yellow
        assert f"color: {text_colour};" in style


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("brand_color", "red", "companies[0].brand_color: not a colour: 'red'"),
        ("brand_color", "#12345g", "companies[0].brand_color: not a colour: '#12345g'"),
        ("brand_color", "#fff; background:url(x)", "companies[0].brand_color: not a colour"),
        ("logo_url", "http://cdn.acme.example/logo.png", "companies[0].logo_url: must be an https:// URL"),
        ("logo_url", "javascript:alert(1)", "companies[0].logo_url: must be an https:// URL"),
        ("logo_url", 'https://x.example/a"onerror="x', "companies[0].logo_url: not a URL"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "",
)
def test_bad_brand_values_exit_2_naming_the_key(make_shop, sqlite_url, key, value, message):
    shop = make_shop(sqlite_url)
    line = f"{key} = {json.dumps(value)}\n"  # a JSON string of ASCII is a TOML basic string
    text = shop.path.read_text().replace("[companies.connection]", line + "[companies.connection]")
    shop.path.write_text(text)
    result = shop.cli("status")
    assert result.code == 2
    assert message in result.err and str(shop.path) in result.err
    assert result.err.count("\n") == 1


# --- reminders with no portal to lead to ------------------------------------------------------


def send_reminder(shop, smtp) -> EmailMessage:
    """One reminder, planned and delivered inside the window."""
    shop.sync([customer("1", NAME, "ap@cafe.example")], [invoice("10", "1", date(2026, 10, 31), "120.00")])
    now = iso(FRIDAY_10AM)
    assert shop.cli("reminders", "plan", "--now", now).code == 0
    sent = shop.cli("mail", "dispatch", "--now", now)
    assert sent.out == "mail: 1 sent, 0 failed, 0 to retry\n", sent.err
    [message] = smtp.messages()
    return message


def assert_no_portal(message: EmailMessage) -> None:
    """The reminder lists its invoice, with no button and no sentence about a portal."""
    text, html = parts(message)
    assert "INV-10" in text and "INV-10" in html and "Past Due" in html
    assert "View and pay" not in html and 'class="button"' not in html and "href" not in html
    assert "portal" not in text and "portal" not in html


def test_a_reminder_of_a_company_without_portal_url_has_no_button_and_no_portal_link(
    make_shop, store_url, smtp
):
    shop = make_shop(store_url, portal_url="", **BRAND)
    assert_no_portal(send_reminder(shop, smtp))


def test_a_reminder_on_the_basic_plan_is_sent_without_leading_to_the_portal(make_shop, store_url, smtp):
    """SPEC 2: the basic plan has no portal (no contact is eligible), yet reminders go on every
    plan; one must not send the customer to a portal they cannot sign in to."""
    shop = make_shop(store_url, plan="basic", **BRAND)
    message = send_reminder(shop, smtp)
    assert_no_portal(message)
    assert PORTAL not in message.as_string()
