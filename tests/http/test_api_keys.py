"""`arsync portal api-key create|list|revoke`, and what the server makes of the keys."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from store.api_keys import company_for_key, create_key, list_keys, revoke_key
from store.db import make_engine, upgrade
from tests.foundation.schema import migrate
from tests.http.conftest import Served


def test_create_list_revoke(served: Served):
    code, out, _ = served.cli("portal", "api-key", "create", "xero")
    assert code == 0
    key = out.splitlines()[-1]
    key_id = key.split("_")[1]
    assert key.startswith("ak_") and len(key) > 40
    code, listed, _ = served.cli("portal", "api-key", "list", "xero")
    assert code == 0 and key_id in listed and key not in listed
    assert served.scalar("SELECT COUNT(*) FROM api_keys WHERE key_hash LIKE :k", k=f"%{key[-10:]}%") == 0
    with served.client(key=key) as client:
        assert client.get("/v1/companies/xero/accounts", params={"email": "a@b.example"}).status_code == 200
        assert served.cli("portal", "api-key", "revoke", "xero", key_id)[0] == 0
        assert client.get("/v1/companies/xero/accounts", params={"email": "a@b.example"}).status_code == 401
    code, listed, _ = served.cli("portal", "api-key", "list", "xero")
    assert key_id not in listed
    code, _, err = served.cli("portal", "api-key", "revoke", "xero", key_id)
    assert code == 2 and key_id in err and "KEY_ID" in err  # revoked already: no live key of that id
    with served.client("xero") as client:  # the company's other key still works
        assert client.get("/v1/companies/xero/accounts", params={"email": "a@b.example"}).status_code == 200


def test_unknown_company_is_bad_usage(served: Served):
    code, _, err = served.cli("portal", "api-key", "create", "nope")
    assert code == 2 and "nope" in err


def test_a_first_release_store_with_data_upgrades_and_takes_keys(store_url: str):
    engine = make_engine(store_url)
    try:
        migrate(engine, command.upgrade, "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO companies (company_id, name, timezone, kind) "
                    "VALUES ('old', 'Old', 'UTC', 'xero')"
                )
            )
        upgrade(engine)
        now = datetime.now(UTC)
        key_id, key = create_key(engine, "old", now=now)
        assert company_for_key(engine, key) == "old"
        assert company_for_key(engine, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert [k.key_id for k in list_keys(engine, "old")] == [key_id]
        assert revoke_key(engine, "old", key_id, now=now) and company_for_key(engine, key) is None
    finally:
        engine.dispose()
