"""`attach_statement = true`: each reminder carries its customer's PDF statement, still one mail
per customer and still only inside the delivery window (real SMTP server on loopback)."""

from __future__ import annotations

from datetime import date, timedelta

from store.history.writes import write_payments
from tests.endtoend.mail.conftest import customer, invoice, iso
from tests.endtoend.mail.test_delivery_windows import utc
from tests.history.books import NOW, pay, payment

FRIDAY_EVENING = utc("2026-11-20T23:00")  # Fri 18:00 in New York: the window is closed
MONDAY_9AM = utc("2026-11-23T14:00")


def test_reminders_carry_the_customers_statement_as_a_pdf(make_shop, sqlite_url, smtp):
    shop = make_shop(sqlite_url, attach_statement=True, reminder_offsets_days=[0])
    shop.sync(
        [customer("1", "Café Müller", "ap@cafe.example"), customer("2", "Łukasz Żółw", "lz@example.com")],
        [
            invoice("10", "1", date(2026, 1, 1), "120.00"),
            invoice("11", "1", date(2026, 1, 5), "80.00"),
            invoice("20", "2", date(2026, 1, 1), "50.00"),
        ],
    )
    with shop.engine.begin() as connection:
        write_payments(
            connection, "acme", [payment("P1", "1", "20", pay("payment", "P1", "10", "20"))], now=NOW
        )

    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_EVENING))
    assert planned.code == 0, planned.err
    assert shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM - timedelta(seconds=1))).out.startswith(
        "mail: 0 sent"
    )
    assert smtp.received == []
    assert (
        shop.cli("mail", "dispatch", "--now", iso(MONDAY_9AM)).out == "mail: 2 sent, 0 failed, 0 to retry\n"
    )

    by_recipient = {tuple(r.rcpt_tos): r.message for r in smtp.received}
    assert set(by_recipient) == {("ap@cafe.example",), ("lz@example.com",)}
    for recipients, ref in ((("ap@cafe.example",), "1"), (("lz@example.com",), "2")):
        message = by_recipient[recipients]
        [attachment] = list(message.iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_filename() == f"statement-{ref}.pdf"
        assert attachment.get_content().startswith(b"%PDF-")
        assert "INV-" in message.get_body(("plain",)).get_content()


def test_attach_statement_is_validated_like_the_other_keys(tmp_path, capsys):
    from sync.cli import main

    path = tmp_path / "arsync.toml"
    path.write_text(
        '[[companies]]\nid = "acme"\nname = "Acme"\nattach_statement = "yes"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )
    assert main(["--config", str(path), "status"]) == 2
    assert "companies[0].attach_statement: Input should be a valid boolean" in capsys.readouterr().err
