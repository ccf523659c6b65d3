"""A brand that skipped the configuration's checks still cannot leave its HTML attribute."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailer.brand import DEFAULT_COLOR, button_text_color
from mailer.mails import InvitationMail, Sender
from mailer.render import render_invitation

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def html_of(sender: Sender) -> str:
    mail = InvitationMail("Café", "ap@cafe.example", "https://portal.acme.example", "t" * 43, 14)
    return render_invitation(sender, mail, key="k", now=NOW).get_body(("html",)).get_content()


def test_unchecked_brand_values_fall_back_to_none():
    html = html_of(
        Sender("acme", "Acme", "b@acme.example", brand_color="red;background:url(x)", logo_url="javascript:x")
    )
    assert f"background-color: {DEFAULT_COLOR};" in html
    assert "url(x)" not in html and "javascript" not in html and "<img" not in html


@pytest.mark.parametrize(
    "background, text",
    [
        ("#1a73e8", "#ffffff"),
        ("#0b8043", "#ffffff"),
        ("#000", "#ffffff"),
        ("#ffdd00", "#000000"),
        ("#fff", "#000000"),
    ],
)
def test_button_text_reads_on_its_background(background, text):
    assert button_text_color(background) == text
