"""Both simulators with hand-built books, a config pointing arsync at them, a migrated store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from connectors.simulators.model import SimCompany
from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero import XeroSimulator
from store.db import make_engine
from sync.cli import main
from tests.endtoend.books import quickbooks_books, xero_books

QBO_COMPANIES = {  # three arsync companies reading the same QuickBooks books with other settings
    "qbo": {},
    "qbo_single": {"multi_account_portal": False},
    "qbo_all": {"import_inactive_customers": True},
}


@dataclass
class World:
    config: Path
    store_url: str
    qbo: QuickBooksSimulator
    xero: XeroSimulator
    qbo_books: SimCompany
    xero_books: SimCompany
    capsys: pytest.CaptureFixture

    def cli(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def sync(self, *args: str) -> dict[str, dict]:
        code, out, err = self.cli("sync", "--json", *args)
        summaries = {row["company"]: row for row in map(json.loads, out.splitlines())}
        assert code == 0, (err, summaries)
        return summaries

    def rows(self, sql: str, **params) -> list[tuple]:
        engine: Engine = make_engine(self.store_url)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(sql), params)]
        finally:
            engine.dispose()


def company_block(cid: str, kind: str, sim, extra: dict, realm: str = "", tenant: str = "") -> str:
    settings = "".join(f"{k} = {json.dumps(v)}\n" for k, v in extra.items())
    base = sim.api_url if kind == "quickbooks" else sim.accounting_url
    return f"""
[[companies]]
id = "{cid}"
name = "{cid.title()} Inc"
timezone = "America/New_York"
portal_url = "https://portal.{cid}.example"
{settings}
[companies.connection]
kind = "{kind}"
realm_id = "{realm}"
tenant_id = "{tenant}"
client_id = "{sim.tokens.client_id}"
client_secret_env = "E2E_{kind.upper()}_SECRET"
api_base_url = "{base}"
token_url = "{sim.token_url}"
"""


@pytest.fixture
def world(store_url: str, tmp_path: Path, capsys, monkeypatch) -> Iterator[World]:
    today = datetime.now(UTC).date()
    qbo_books, x_books = quickbooks_books(today), xero_books(today)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    with QuickBooksSimulator(qbo_books) as qbo, XeroSimulator([x_books]) as xero:
        monkeypatch.setenv("E2E_QUICKBOOKS_SECRET", qbo.tokens.client_secret)
        monkeypatch.setenv("E2E_XERO_SECRET", xero.tokens.client_secret)
        blocks = [
            company_block(cid, "quickbooks", qbo, extra, realm=qbo_books.id)
            for cid, extra in QBO_COMPANIES.items()
        ]
        blocks.append(company_block("xero", "xero", xero, {"multi_account_portal": False}, tenant=x_books.id))
        config = tmp_path / "arsync.toml"
        config.write_text(f'[store]\nurl = "{store_url}"\n[log]\nlevel = "warning"\n' + "".join(blocks))
        world = World(config, store_url, qbo, xero, qbo_books, x_books, capsys)
        assert world.cli("db", "upgrade")[0] == 0
        for cid in [*QBO_COMPANIES, "xero"]:
            pair = (qbo if cid != "xero" else xero).tokens.issue()
            code, _, err = world.cli(
                "auth",
                "set-tokens",
                cid,
                "--access-token",
                pair.access_token,
                "--refresh-token",
                pair.refresh_token,
                "--expires-in",
                "1800",
            )
            assert code == 0, err
        yield world
    os.environ.pop("ARSYNC_CONFIG", None)
