"""Render the default invitation and reminder mails as pictures for the README.

    .venv/bin/python docs/render_mail_screenshots.py [--chromium PATH]

Builds both mails with the real renderer (a sample company with `brand_color` and
`logo_url`), takes each HTML part and photographs it with headless Chromium (the
distribution's package: `apt-get install -y chromium`) into docs/mail-invitation.png and
docs/mail-reminder.png. The logo URL points nowhere real, so for the picture only it is
swapped for a local SVG drawn here; the browser runs with networking off. Not part of
the tests: CI checks the HTML itself, never pixels.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailer.mails import InvitationMail, ReminderLine, ReminderMail, Sender  # noqa: E402
from mailer.render import render_invitation, render_reminder  # noqa: E402

DOCS = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
LOGO_URL = "https://cdn.acme.example/logo.svg"
LOGO_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="240" height="48" viewBox="0 0 240 48">
<circle cx="24" cy="24" r="20" fill="#0b8043"/><path d="M14 30 L24 12 L34 30 Z" fill="#fff"/>
<text x="54" y="32" font-family="Arial, Helvetica, sans-serif" font-size="19" font-weight="bold"
 fill="#0b8043">Acme Landscaping</text></svg>"""
SENDER = Sender("acme", "Acme Landscaping", "billing@acme.example", brand_color="#0b8043", logo_url=LOGO_URL)
PORTAL = "https://portal.acme.example"


def mails() -> dict[str, str]:
    """The HTML part of each default mail, as customers receive it."""
    invitation = render_invitation(
        SENDER,
        InvitationMail("Café Müller", "ap@cafe.example", PORTAL, "Xq3v" * 10 + "abc", 14),
        key="screenshot",
        now=NOW,
    )
    lines = (
        ReminderLine("INV-1010", date(2026, 10, 31), Decimal("120.00"), "USD"),
        ReminderLine("INV-1011", date(2026, 11, 20), Decimal("80.50"), "USD"),
        ReminderLine("INV-1012", date(2026, 11, 28), Decimal("1234.50"), "USD"),
    )
    reminder = render_reminder(
        SENDER,
        ReminderMail("Café Müller", ("ap@cafe.example",), PORTAL, lines, date(2026, 11, 20)),
        key="screenshot",
        now=NOW,
    )
    return {
        name: message.get_body(("html",)).get_content()
        for name, message in (("invitation", invitation), ("reminder", reminder))
    }


def photograph(chromium: str, html: str, target: Path, height: int, workdir: Path) -> None:
    page = workdir / f"{target.stem}.html"
    page.write_text(html.replace(LOGO_URL, (workdir / "logo.svg").as_uri()), encoding="utf-8")
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={workdir / 'profile'}",
            f"--screenshot={target}",
            f"--window-size=720,{height}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arsync-mail-shots-") as tmp:
        workdir = Path(tmp)
        (workdir / "logo.svg").write_text(LOGO_SVG, encoding="utf-8")
        heights = {"invitation": 730, "reminder": 710}
        for name, html in mails().items():
            target = DOCS / f"mail-{name}.png"
            photograph(args.chromium, html, target, heights[name], workdir)
            print(f"wrote {target}")


if __name__ == "__main__":
    main()
