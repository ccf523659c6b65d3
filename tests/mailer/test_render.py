from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from mailer.environment import money
from mailer.mails import Sender
from mailer.render import message_id, recipient_name, render_invitation, render_reminder
from tests.mailer.conftest import NOW


def reparse(message: EmailMessage) -> EmailMessage:
    """What a receiving mail client sees: the serialized bytes parsed again."""
    return message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def test_invitation_headers_and_link(sender, invitation):
    received = reparse(render_invitation(sender, invitation, key="invitation:42", now=NOW))

    assert received["Subject"] == "Welcome to the Acme Landscaping customer portal"
    assert received["From"].addresses[0].display_name == "Acme Landscaping"
    assert received["From"].addresses[0].addr_spec == "billing@acme.example"
    assert [a.addr_spec for a in received["To"].addresses] == ["zoe@cafe.example"]
    assert received["To"].addresses[0].display_name == "Zoë's Café"
    assert received["Date"].datetime == NOW
    assert received.get_content_type() == "multipart/alternative"
    text, html = parts(received)
    link = "https://portal.acme.example/invite/tok_AbC-123"
    assert link in text
    assert f'href="{link}"' in html
    assert "Dear Zoë's Café" in text
    assert "expires in 14 days" in text and "expires in 14 days" in html
    assert "view your invoices" in text and "Past Due" in html


def test_message_id_is_stable_and_reveals_nothing(sender, invitation):
    first = render_invitation(sender, invitation, key="invitation:42", now=NOW)
    again = render_invitation(sender, invitation, key="invitation:42", now=NOW.replace(hour=20))
    other = render_invitation(sender, invitation, key="invitation:43", now=NOW)

    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] != other["Message-ID"]
    assert re.fullmatch(r"<invitation\.acme\.[0-9a-f]{32}@acme\.example>", first["Message-ID"])
    assert message_id("reminder", "we ird/co", "k", "x@y.example").startswith("<reminder.we-ird-co.")


def test_reminder_lists_invoices_with_past_due_and_total(sender, reminder):
    received = reparse(render_reminder(sender, reminder, key="reminder:bob:2024-05-20", now=NOW))

    assert [a.addr_spec for a in received["To"].addresses] == [
        "bob@burgers.example",
        "linda@burgers.example",
    ]
    assert received["Subject"] == "Past due: 3 open invoices from Acme Landscaping"
    assert received["Auto-Submitted"] == "auto-generated"
    text, html = parts(received)
    assert "INV-1001  due May 1, 2024  balance 1,234.50 USD  PAST DUE" in text
    assert "INV-1002  due May 23, 2024  balance 100.00 USD\n" in text  # not yet due
    assert "INV-1003  due Apr 1, 2024  balance 0.00 USD\n" in text  # paid: never past due
    assert "Total balance: 1,334.50 USD" in text
    rows = re.findall(r'<tr class="invoice".*?</tr>', html, re.S)
    assert len(rows) == 3
    assert ["Past Due" in row for row in rows] == [True, False, False]
    assert "https://portal.acme.example" in text and 'href="https://portal.acme.example"' in html


def test_reminder_totals_per_currency(sender, reminder):
    items = (reminder.items[0], replace(reminder.items[1], currency="CAD"))
    text, _ = parts(render_reminder(sender, replace(reminder, items=items), key="k", now=NOW))

    assert "Total balance: 1,234.50 USD" in text
    assert "Total balance: 100.00 CAD" in text


HOSTILE = "Evil Corp\r\nBcc: victim@example.com\r\n\r\n<script>alert('x')</script>"


def test_names_cannot_inject_headers(sender, invitation, reminder):
    hostile_sender = replace(sender, company_name=HOSTILE)
    messages = [
        render_invitation(hostile_sender, replace(invitation, customer_name=HOSTILE), key="a", now=NOW),
        render_reminder(hostile_sender, replace(reminder, customer_name=HOSTILE), key="b", now=NOW),
    ]
    for message in messages:
        raw = message.as_bytes(policy=policy.SMTP)
        headers = raw.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"^Bcc:", headers, re.M | re.I), headers
        received = reparse(message)
        assert received["Bcc"] is None
        assert "victim@example.com" not in [a.addr_spec for a in received["To"].addresses]
        assert received["From"].addresses[0].addr_spec == "billing@acme.example"
        assert received["From"].addresses[0].display_name == recipient_name(HOSTILE)
        assert "\n" not in received["Subject"] and "\r" not in received["Subject"]


def test_names_cannot_inject_markup(sender, invitation, reminder):
    hostile_sender = replace(sender, company_name=HOSTILE)
    for message in (
        render_invitation(hostile_sender, replace(invitation, customer_name=HOSTILE), key="a", now=NOW),
        render_reminder(hostile_sender, replace(reminder, customer_name=HOSTILE), key="b", now=NOW),
    ):
        text, html = parts(reparse(message))
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
        assert "<script>alert('x')</script>" in text  # plain text shows it literally


def test_doc_numbers_are_escaped_too(sender, reminder):
    items = (replace(reminder.items[0], doc_number='<img src=x onerror="steal()">'),)
    _, html = parts(render_reminder(sender, replace(reminder, items=items), key="k", now=NOW))

    assert "<img" not in html and "&lt;img src=x" in html


def test_company_template_dir_overrides_only_what_it_has(tmp_path, sender, invitation):
    (tmp_path / "invitation.subject.txt").write_text("{{ company_name }}: your portal access\n")
    (tmp_path / "invitation.html").write_text("<p>Hi {{ customer_name }}: {{ invite_url }}</p>")
    custom = replace(sender, template_dir=str(tmp_path))

    message = reparse(render_invitation(custom, invitation, key="k", now=NOW))
    text, html = parts(message)

    assert message["Subject"] == "Acme Landscaping: your portal access"
    assert html.strip() == "<p>Hi Zoë&#39;s Café: https://portal.acme.example/invite/tok_AbC-123</p>"
    assert "view your invoices" in text  # the packaged text part


def test_missing_template_dir_is_an_error(sender, invitation):
    with pytest.raises(ValueError, match="template_dir"):
        render_invitation(
            replace(sender, template_dir="/nonexistent/templates"), invitation, key="k", now=NOW
        )


def test_template_typo_fails_loudly(tmp_path, sender, invitation):
    (tmp_path / "invitation.txt").write_text("Hello {{ customer_nmae }}")
    with pytest.raises(Exception, match="customer_nmae"):
        render_invitation(Sender("c2", "C2", "a@b.example", str(tmp_path)), invitation, key="k", now=NOW)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("0"), "USD", "0.00 USD"),
        (Decimal("1234.5"), "USD", "1,234.50 USD"),
        (Decimal("0.005"), "EUR", "0.01 EUR"),
        (Decimal("-12.345"), "GBP", "-12.35 GBP"),
        (Decimal("1000000"), "JPY", "1,000,000.00 JPY"),
    ],
    ids=["zero", "thousands", "half-up", "negative", "million"],
)
def test_money(amount, currency, expected):
    assert money(amount, currency) == expected


def test_money_refuses_floats():
    with pytest.raises(TypeError):
        money(1.5, "USD")


def test_naive_now_is_refused(sender, invitation):
    with pytest.raises(ValueError, match="timezone-aware"):
        render_invitation(sender, invitation, key="k", now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize("address", ["not an email", "x@@y.example", "a b@c.example"])
def test_invalid_recipient_is_a_value_error(sender, invitation, address):
    with pytest.raises(ValueError, match="invalid email address"):
        render_invitation(sender, replace(invitation, email=address), key="k", now=NOW)
