"""A company id's rows belong to the books they were synced from (`store.runs.BooksChanged`).

A SaaS operator removes a tenant (its rows stay, as SPEC §11 says) and later gives the id to
another tenant, or edits a company's realm id in the file. Syncing the new books over the old
rows, from the old cursor, imported nothing of the new books and left the first tenant's
customers in the second's portal and reminders. Now the store keeps whose books its rows
are; `company add` and the sync refuse to mix two, and `company remove ID --purge` deletes
rows an earlier removal kept. One QuickBooks simulator serves both realms, through the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.db import make_engine
from sync.cli import main

FIRST, SECOND = "9130000000000501", "9130000000000502"


@dataclass
class Operator:
    config: Path
    store_url: str
    sim: QuickBooksSimulator
    capsys: pytest.CaptureFixture

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def company(self, path: Path, realm: str, cid: str = "tenant") -> Path:
        path.write_text(
            f'[[companies]]\nid = "{cid}"\nname = "Tenant of {realm[-3:]}"\n'
            f'[companies.connection]\nkind = "quickbooks"\nrealm_id = "{realm}"\n'
            f'client_id = "{self.sim.tokens.client_id}"\nclient_secret_env = "BOOKS_QBO_SECRET"\n'
            f'api_base_url = "{self.sim.api_url}"\ntoken_url = "{self.sim.token_url}"\n'
        )
        return path

    def connect(self, cid: str = "tenant") -> None:
        pair = self.sim.tokens.issue()
        tokens = ["--access-token", pair.access_token, "--refresh-token", pair.refresh_token]
        code, _, err = self("auth", "set-tokens", cid, *tokens, "--expires-in", "3600")
        assert code == 0, err

    def sync(self, cid: str = "tenant") -> tuple[int, dict]:
        code, out, _ = self("sync", cid, "--json")
        return code, json.loads(out.splitlines()[-1])

    def customers(self, cid: str = "tenant") -> set[str]:
        """The display names `portal_customers` shows for `cid`."""
        engine = make_engine(self.store_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT display_name FROM portal_customers WHERE company_id = :c"), {"c": cid}
                )
                return {row[0] for row in rows}
        finally:
            engine.dispose()


@pytest.fixture
def operator(store_url: str, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    today = datetime.now(UTC).date()
    with QuickBooksSimulator() as sim:
        for seed, realm, customers in ((11, FIRST, 6), (12, SECOND, 3)):
            sim.add_company(generate_company("quickbooks", seed=seed, customers=customers, invoices=8,
                                             today=today, company_id=realm))  # fmt: skip
        monkeypatch.setenv("BOOKS_QBO_SECRET", sim.tokens.client_secret)
        config = tmp_path / "arsync.toml"
        config.write_text(f'[store]\nurl = "{store_url}"\n[log]\nlevel = "warning"\n')
        run = Operator(config, store_url, sim, capsys)
        assert run("db", "upgrade")[0] == 0
        yield run


def _names(sim: QuickBooksSimulator, realm: str) -> set[str]:
    return {c.name for c in sim.company(realm).customers.values()}


def test_an_id_given_to_another_tenant_never_shows_the_first_ones_books(operator, tmp_path):
    first = operator.company(tmp_path / "first.toml", FIRST)
    second = operator.company(tmp_path / "second.toml", SECOND)
    assert operator("company", "add", str(first))[0] == 0
    operator.connect()
    code, summary = operator.sync()
    assert code == 0 and summary["status"] == "ok", summary
    shown = operator.customers()
    assert shown and shown <= _names(operator.sim, FIRST)
    code, out, err = operator("company", "remove", "tenant")
    assert code == 0 and "stored rows stay" in out, err

    # the id for another tenant: refused while the first one's rows are kept
    code, _, err = operator("company", "add", str(second))
    assert code == 2, err
    assert f"still holds the rows synced from quickbooks realm {FIRST}" in err, err
    assert "`arsync company remove tenant --purge`" in err, err
    assert operator.customers() == shown  # nothing was changed

    # the same tenant back: its kept rows are its own, and it goes on from them
    assert operator("company", "add", str(first))[0] == 0
    operator.connect()
    code, summary = operator.sync()
    assert (code, summary["status"], summary["full"]) == (0, "ok", False), summary
    assert operator("company", "remove", "tenant")[0] == 0

    # the kept rows purged though the company is gone, the id serves the second tenant alone
    code, out, err = operator("company", "remove", "tenant", "--purge")
    assert code == 0 and "purged" in out, err
    assert operator.customers() == set()
    assert operator("company", "remove", "tenant", "--purge")[0] == 2  # nothing left to purge
    assert operator("company", "add", str(second))[0] == 0
    operator.connect()
    code, summary = operator.sync()
    assert (code, summary["status"], summary["full"]) == (0, "ok", True), summary
    assert operator.customers() and operator.customers() <= _names(operator.sim, SECOND)


def test_a_realm_edited_in_the_file_fails_the_sync_until_the_old_rows_are_purged(operator):
    config = operator.config
    base = config.read_text()
    company = operator.company(config.with_name("co.toml"), FIRST, cid="co").read_text()
    config.write_text(base + company)
    operator.connect("co")
    assert operator.sync("co")[1]["status"] == "ok"
    shown = operator.customers("co")

    config.write_text(base + company.replace(FIRST, SECOND))
    code, summary = operator.sync("co")
    assert code == 1 and summary["status"] == "failed", summary
    assert (
        f"holds rows synced from quickbooks realm {FIRST}, but is connected to quickbooks realm {SECOND}"
        in (summary["error"])
    )
    assert operator.customers("co") == shown  # untouched
    code, out, err = operator("status")
    assert code == 0 and f"quickbooks realm {FIRST}" in out, out

    code, out, err = operator("company", "remove", "co", "--purge")
    assert code == 0 and f"purged co's rows synced from quickbooks realm {FIRST}" in out, err
    operator.connect("co")
    code, summary = operator.sync("co")
    assert (code, summary["status"]) == (0, "ok"), summary
    assert operator.customers("co") and operator.customers("co") <= _names(operator.sim, SECOND)
    # the file's company keeps its rows against a purge once they are its own again
    assert operator("company", "remove", "co", "--purge")[0] == 2
