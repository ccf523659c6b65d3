"""Rendering many reminders in worker processes gives exactly what rendering them here gives."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from mailer.bulk import PARALLEL_FROM, render_reminders
from mailer.mails import ReminderLine, ReminderMail, Sender

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
BOUNDARY = re.compile(r"={15}\d+==")


def _stable(rendered):
    """The rendered message with its MIME boundary (random per message) neutralised."""
    return replace(rendered, payload=BOUNDARY.sub("BOUNDARY", rendered.payload))


def test_parallel_rendering_equals_serial():
    sender = Sender("acme", "Acme Café", "billing@acme.example")
    mails = [
        (
            ReminderMail(
                f"Kunde {i} Müller",
                (f"ap{i}@kunde.example",),
                "https://portal.acme.example",
                (ReminderLine(f"INV-{i}", date(2026, 11, 1), Decimal(i).scaleb(-2), "EUR"),),
                date(2026, 11, 18),
            ),
            f"reminder:{i}",
        )
        for i in range(PARALLEL_FROM + 50)
    ]
    parallel = render_reminders(sender, mails, now=NOW, workers=2)
    serial = render_reminders(sender, mails, now=NOW, workers=1)
    assert [_stable(r) for r in parallel] == [_stable(r) for r in serial]
    assert len({r.message_id for r in parallel}) == len(mails)
    assert parallel[7].recipients == ("ap7@kunde.example",)
    assert "INV-7" in parallel[7].payload
