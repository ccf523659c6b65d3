"""Rotating ARSYNC_SECRET_KEY without a reconnect: the old key read from
ARSYNC_SECRET_KEY_PREVIOUS, `arsync auth rekey` sealing every stored token with the new one,
through the CLI against the QuickBooks simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from connectors.base import Tokens
from connectors.simulators.generator import sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.credentials import DbCredentials
from store.crypto import SecretBox, SecretKeyError
from store.db import make_engine, upgrade
from store.rekey import Outcome, reseal_all
from sync.cli import main

OLD, NEW, STRAY = "the-old-key-of-acme", "the-new-key-of-acme", "a-key-nobody-kept"


@pytest.fixture
def qbo():
    with QuickBooksSimulator(sample_company("quickbooks", today=datetime.now(UTC).date())) as sim:
        yield sim


@pytest.fixture
def shop(tmp_path, store_url, qbo, monkeypatch, capsys):
    blocks = "".join(
        f"""
[[companies]]
id = "{cid}"
name = "{cid.title()}"
[companies.connection]
kind = "quickbooks"
realm_id = "{qbo.realms[0]}"
api_base_url = "{qbo.api_url}"
client_id = "{qbo.tokens.client_id}"
client_secret_env = "SHOP_SECRET"
token_url = "{qbo.token_url}"
"""
        for cid in ("acme", "globex")
    )
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n[log]\nlevel = "warning"\n{blocks}')
    monkeypatch.setenv("SHOP_SECRET", qbo.tokens.client_secret)
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    monkeypatch.delenv("ARSYNC_SECRET_KEY_PREVIOUS", raising=False)
    engine = make_engine(store_url)
    upgrade(engine)

    def cli(*args: str, key: str | None = None, previous: str | None = None) -> tuple[int, str, str]:
        for name, value in (("ARSYNC_SECRET_KEY", key), ("ARSYNC_SECRET_KEY_PREVIOUS", previous)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(["--config", str(config), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    def stored(company: str) -> tuple[str, str]:
        with engine.connect() as connection:
            return tuple(
                connection.execute(
                    text("SELECT access_token, refresh_token FROM connections WHERE company_id = :c"),
                    {"c": company},
                ).one()
            )

    def store_tokens(company: str, key: str) -> Tokens:
        pair = qbo.tokens.issue()
        code, _, err = cli(
            "auth", "set-tokens", company, "--access-token", pair.access_token,
            "--refresh-token", pair.refresh_token, key=key,
        )  # fmt: skip
        assert code == 0, err
        return pair

    yield cli, stored, store_tokens, engine
    engine.dispose()


def test_a_key_is_rotated_without_a_reconnect(shop):
    cli, stored, store_tokens, _ = shop
    pair = store_tokens("acme", OLD)
    code, out, err = cli("sync", "acme", key=NEW)
    assert code == 1 and "cannot be decrypted with this ARSYNC_SECRET_KEY" in out + err  # the new key alone

    assert cli("sync", "acme", key=NEW, previous=OLD)[0] == 0  # both: the old one still reads them
    code, out, _ = cli("auth", "rekey", "--dry-run", key=NEW, previous=OLD)
    assert (code, out) == (
        0,
        "rekey: 1 company(ies) would be sealed with the current key (acme), 0 already were\n",
    )
    assert SecretBox(OLD).open(stored("acme")[1]) == pair.refresh_token  # the dry run changed nothing

    code, out, _ = cli("auth", "rekey", key=NEW, previous=OLD)
    assert (code, out) == (
        0,
        "rekey: 1 company(ies) sealed with the current key (acme), 0 already were\n",
    )
    access, refresh = stored("acme")
    assert (SecretBox(NEW).open(access), SecretBox(NEW).open(refresh)) == (
        pair.access_token,
        pair.refresh_token,
    )
    with pytest.raises(SecretKeyError):
        SecretBox(OLD).open(refresh)
    assert cli("sync", "acme", key=NEW)[0] == 0  # the old key can go
    code, out, _ = cli("auth", "rekey", key=NEW)
    assert out == "rekey: 0 company(ies) sealed with the current key, 1 already were\n"


def test_tokens_no_key_opens_are_named_and_left_as_stored(shop):
    cli, stored, store_tokens, _ = shop
    store_tokens("acme", OLD)
    store_tokens("globex", STRAY)
    before = stored("globex")

    code, out, err = cli("auth", "rekey", key=NEW, previous=OLD)

    assert code == 1
    assert "rekey: 1 company(ies) sealed with the current key (acme), 0 already were\n" in out
    assert (
        "  globex: left as stored: stored tokens cannot be decrypted with this ARSYNC_SECRET_KEY"
        " (nor with ARSYNC_SECRET_KEY_PREVIOUS)\n" in out
    )
    assert "arsync auth connect COMPANY" in err and "Traceback" not in err
    assert stored("globex") == before
    assert SecretBox(NEW).open(stored("acme")[1])


def test_plain_tokens_are_sealed_once_a_key_is_set_and_no_key_is_usage(shop):
    cli, stored, store_tokens, _ = shop
    pair = store_tokens("acme", None)
    assert stored("acme")[1] == f"plain:{pair.refresh_token}"
    code, _, err = cli("auth", "rekey")
    assert code == 2 and "set ARSYNC_SECRET_KEY to the key to seal with" in err

    assert cli("auth", "rekey", key=NEW)[0] == 0
    assert SecretBox(NEW).open(stored("acme")[1]) == pair.refresh_token


class RefreshedMeanwhile(SecretBox):
    """A real box; the first token it opens, a worker refreshes the company's tokens (saved
    sealed with the new key, as a worker started with it does) before rekey writes."""

    def __init__(self, engine, fresh: Tokens) -> None:
        super().__init__(NEW, [OLD])
        self.engine, self.fresh, self.raced = engine, fresh, False

    def open(self, stored: str) -> str:
        if not self.raced:
            self.raced = True
            DbCredentials(self.engine, "acme", SecretBox(NEW, [OLD])).save(self.fresh)
        return super().open(stored)


def test_a_refresh_while_rekey_runs_is_never_written_over(shop):
    """Rekey read the old tokens; a refresh saved rotated ones before it wrote. Writing the old
    ones back would leave a refresh token the provider has retired (a reconnect)."""
    _, stored, store_tokens, engine = shop
    store_tokens("acme", OLD)
    soon = datetime.now(UTC) + timedelta(hours=1)
    fresh = Tokens("fresh-access", "fresh-refresh", soon, soon + timedelta(days=100))

    done = reseal_all(engine, RefreshedMeanwhile(engine, fresh))

    assert done.companies[Outcome.CURRENT] == ["acme"]  # read again: already sealed with the new key
    assert [SecretBox(NEW).open(value) for value in stored("acme")] == ["fresh-access", "fresh-refresh"]
