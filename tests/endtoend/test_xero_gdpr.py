"""A Xero contact with ContactStatus GDPRREQUEST asked for its personal data to be erased: it
is never mailed, whatever the settings. `import_inactive_customers = true` imports it (and
treats archived contacts like active ones), but it comes without any email address, so no
invitation or reminder can reach it. Xero simulator -> xero-python -> `arsync sync`, then
`arsync invite`, with mail as a real SMTP server on loopback receives it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.simulators.model import SimCompany
from connectors.simulators.xero import XeroSimulator
from store.db import make_engine
from sync.cli import main
from tests.endtoend.books import xero_books
from tests.endtoend.conftest import company_block
from tests.mailer.smtp_server import LoopbackController, Recorder

COMPANY = "xero_all"
ORSTED = "00000000-0000-4000-8000-000000000001"  # active, two addresses in emails
ARCHIVED = "00000000-0000-4000-8000-000000000002"  # ARCHIVED: imported by the setting, mailed
FORGOTTEN = "00000000-0000-4000-8000-000000000004"  # GDPRREQUEST, gdpr@person.example in Xero
CONTACTS = "SELECT customer_ref, email FROM contacts WHERE company_id = :c AND in_source = :yes ORDER BY 1, 2"


@dataclass
class Books:
    config: Path
    store_url: str
    xero: XeroSimulator
    company: SimCompany
    recorder: Recorder
    capsys: pytest.CaptureFixture

    def cli(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def sync(self, *args: str) -> None:
        code, out, err = self.cli("sync", "--json", *args)
        assert code == 0 and json.loads(out)["status"] == "ok", (err, out)

    def rows(self, sql: str, **params) -> list[tuple]:
        engine = make_engine(self.store_url)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(sql), params)]
        finally:
            engine.dispose()

    def mailed(self) -> list[str]:
        with self.recorder.lock:
            return sorted(to for received in self.recorder.received for to in received.rcpt_tos)


@pytest.fixture
def books(store_url: str, tmp_path: Path, capsys, monkeypatch) -> Iterator[Books]:
    company = xero_books(datetime.now(UTC).date())
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    recorder = Recorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    try:
        with XeroSimulator([company]) as xero:
            monkeypatch.setenv("E2E_XERO_SECRET", xero.tokens.client_secret)
            settings = {"import_inactive_customers": True}
            mail = (
                '[mail]\ntransport = "smtp"\nfrom_address = "billing@books.example"\n'
                f'smtp_host = "127.0.0.1"\nsmtp_port = {smtp.port}\nsmtp_security = "none"\n'
            )
            config = tmp_path / "arsync.toml"
            config.write_text(
                f'[store]\nurl = "{store_url}"\n[log]\nlevel = "warning"\n{mail}'
                + company_block(COMPANY, "xero", xero, settings, tenant=company.id)
            )
            world = Books(config, store_url, xero, company, recorder, capsys)
            assert world.cli("db", "upgrade")[0] == 0
            pair = xero.tokens.issue()
            code, _, err = world.cli(
                "auth", "set-tokens", COMPANY, "--access-token", pair.access_token,
                "--refresh-token", pair.refresh_token, "--expires-in", "1800",
            )  # fmt: skip
            assert code == 0, err
            yield world
    finally:
        smtp.stop()


def test_a_gdpr_request_contact_is_imported_without_emails_and_never_invited(books: Books):
    books.sync()

    customers = books.rows("SELECT ref, active FROM customers WHERE company_id = :c ORDER BY ref", c=COMPANY)
    assert [(ref, bool(active)) for ref, active in customers] == [
        (ORSTED, True),
        (ARCHIVED, False),
        (FORGOTTEN, False),  # imported by the setting, as archived contacts are
    ]

    code, _, err = books.cli("invite", COMPANY, "--all-eligible")
    assert code == 0, err
    # the archived contact is invited like an active one: the setting is in force
    assert books.mailed() == ["accounts@orsted.example", "gone@archived.example"]
    assert books.rows("SELECT COUNT(*) FROM contacts WHERE customer_ref = :r", r=FORGOTTEN) == [(0,)]

    code, _, err = books.cli("invite", COMPANY, "--customer", FORGOTTEN)
    assert code == 2 and "--customer" in err
    assert "gdpr@person.example" not in books.mailed()
    assert books.rows("SELECT COUNT(*) FROM invitations WHERE email = 'gdpr@person.example'") == [(0,)]


def test_a_contact_that_asks_for_erasure_after_it_was_stored_is_not_mailed_again(books: Books):
    books.sync()
    with books.xero.mutate(books.company.id) as company:
        orsted = company.customers[ORSTED]
        orsted.gdpr_request = True
        orsted.updated_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        company.revision += 1
    books.sync()

    assert [ref for ref, _ in books.rows(CONTACTS, c=COMPANY, yes=True)] == [ARCHIVED]
    code, _, err = books.cli("invite", COMPANY, "--all-eligible")
    assert code == 0, err
    assert books.mailed() == ["gone@archived.example"]
