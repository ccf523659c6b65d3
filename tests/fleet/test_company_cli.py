"""`arsync company add|remove|list`: stored companies, validated like the main file."""

from __future__ import annotations

import json

from sqlalchemy import text

from store.db import make_engine
from tests.fleet.conftest import company_toml


def count(store_url: str, sql: str) -> int:
    engine = make_engine(store_url)
    with engine.connect() as connection:
        value = connection.scalar(text(sql))
    engine.dispose()
    return value


def test_add_list_request_and_remove_a_stored_company(cli, tmp_path):
    extra = tmp_path / "tenants.toml"
    extra.write_text(company_toml("initech", timezone="Europe/Paris") + company_toml("hooli"))
    code, out, err = cli("company", "add", str(extra))
    assert (code, out) == (0, "added initech, hooli; running workers start syncing within a minute\n"), err
    code, out, _ = cli("company", "list", "--json")
    listed = {row["id"]: row["source"] for row in json.loads(out)}
    assert listed == {"acme": "file", "globex": "file", "initech": "store", "hooli": "store"}
    assert cli("sync", "--request", "initech")[0] == 0  # a stored company is a company like any other
    assert count(cli.store_url, "SELECT COUNT(*) FROM companies WHERE company_id = 'initech'") == 1

    code, out, _ = cli("company", "remove", "initech")
    assert (code, out) == (0, "removed initech; its stored rows stay\n")
    assert [row["id"] for row in json.loads(cli("company", "list", "--json")[1])] == [
        "acme",
        "globex",
        "hooli",
    ]
    assert count(cli.store_url, "SELECT COUNT(*) FROM companies WHERE company_id = 'initech'") == 1
    assert count(cli.store_url, "SELECT COUNT(*) FROM sync_schedule WHERE company_id = 'initech'") == 0
    assert cli("sync", "--request", "initech")[0] == 2

    code, out, _ = cli("company", "remove", "hooli", "--purge")
    assert (code, out) == (0, "removed hooli and purged its rows\n")
    assert count(cli.store_url, "SELECT COUNT(*) FROM companies WHERE company_id = 'hooli'") == 0

    # the rows removed initech kept, purged later: it is not "removed" a second time
    code, out, _ = cli("company", "remove", "initech", "--purge")
    assert (code, out) == (0, "purged the rows initech kept after it was removed\n")
    assert count(cli.store_url, "SELECT COUNT(*) FROM companies WHERE company_id = 'initech'") == 0
    code, _, err = cli("company", "remove", "initech", "--purge")
    assert code == 2 and "no company 'initech' in the store" in err


def test_a_company_file_is_validated_like_the_main_file(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(company_toml("ok1") + company_toml("bad", timezone="Mars/Olympus"))
    code, out, err = cli("company", "add", str(bad))
    assert (code, out) == (2, "")
    assert (
        err
        == f"arsync: configuration error: {bad}: companies[1].timezone: unknown time zone 'Mars/Olympus'\n"
    )
    bad.write_text('[store]\nurl = "sqlite://"\n' + company_toml("ok1"))
    assert cli("company", "add", str(bad))[2].endswith(
        "store: unknown key (a company file holds only [[companies]] tables)\n"
    )
    assert cli("company", "add", str(tmp_path / "missing.toml"))[0] == 2
    assert json.loads(cli("company", "list", "--json")[1])[-1]["id"] == "globex"  # nothing was stored


def test_an_id_in_the_file_and_the_store_is_exit_2_naming_it(cli, tmp_path):
    clash = tmp_path / "clash.toml"
    clash.write_text(company_toml("globex"))
    code, _, err = cli("company", "add", str(clash))
    assert code == 2 and "companies[0].id: company 'globex' is already in" in err
    again = tmp_path / "again.toml"
    again.write_text(company_toml("initech"))
    assert cli("company", "add", str(again))[0] == 0
    code, _, err = cli("company", "add", str(again))
    assert code == 2 and "company 'initech' is already in the store" in err
    # the operator then writes it into the file as well: every command refuses, naming it
    cli.config.write_text(cli.config.read_text() + company_toml("initech"))
    code, _, err = cli("company", "list")
    assert code == 2 and "company 'initech' is both in" in err and "`arsync company remove initech`" in err
    # and the command the message names settles it (purging would delete the file's company's rows)
    code, _, err = cli("company", "remove", "initech", "--purge")
    assert code == 2 and "--purge would delete the rows it syncs" in err
    code, out, _ = cli("company", "remove", "initech")
    assert (code, out) == (0, f"removed initech from the store; it stays configured in {cli.config}\n")
    code, out, _ = cli("company", "list", "--json")
    assert code == 0 and {row["id"]: row["source"] for row in json.loads(out)}["initech"] == "file"


def test_remove_refuses_file_companies_and_unknown_ids(cli):
    code, _, err = cli("company", "remove", "acme")
    assert code == 2 and "is in" in err and "not in the store" in err
    code, _, err = cli("company", "remove", "nope")
    assert code == 2 and "no company 'nope' in the store" in err


def test_removing_a_stored_company_revokes_its_portal_keys_so_a_reused_id_is_not_reachable(cli, tmp_path):
    """The rows stay (no --purge), but the company's API keys end with it: an operator who
    later gives the id to another tenant must not hand the first tenant's portal its books."""
    from store.api_keys import company_for_key

    extra = tmp_path / "tenant.toml"
    extra.write_text(company_toml("initech"))
    assert cli("company", "add", str(extra))[0] == 0
    code, out, err = cli("portal", "api-key", "create", "initech")
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    engine = make_engine(cli.store_url)
    try:
        assert company_for_key(engine, key) == "initech"
        code, out, _ = cli("company", "remove", "initech")
        assert (code, out) == (0, "removed initech; its stored rows stay, its 1 portal API key(s) revoked\n")
        assert company_for_key(engine, key) is None
        assert cli("company", "add", str(extra))[0] == 0  # the id given again
        assert company_for_key(engine, key) is None
    finally:
        engine.dispose()


def test_a_stored_companys_template_dir_is_taken_from_its_files_folder(cli, tmp_path, monkeypatch):
    # like the main file's relative paths: the workers and admins run from any folder
    tenants = tmp_path / "tenants"
    (tenants / "tpl").mkdir(parents=True)
    (tenants / "tenants.toml").write_text(company_toml("initech", template_dir="tpl"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("company", "add", str(tenants / "tenants.toml"))[0] == 0
    code, out, err = cli("reminders", "plan", "initech")
    assert (code, err) == (0, ""), err
    assert out == "initech: enqueued 0 reminder email(s); 0 earlier offset(s) skipped\n"
    stored = count(
        cli.store_url, "SELECT COUNT(*) FROM company_definitions WHERE definition LIKE '%tenants/tpl%'"
    )
    assert stored == 1


def test_a_stored_company_that_no_longer_validates_is_named_with_its_key(cli):
    # e.g. a time zone the machine's tzdata no longer has: the message says which key, and how out
    with make_engine(cli.store_url).begin() as connection:
        definition = json.dumps(
            {"id": "initech", "name": "I", "timezone": "Mars/Base", "connection": {"kind": "xero"}}
        )
        connection.execute(
            text(
                "INSERT INTO company_definitions (company_id, definition, added_at)"
                " VALUES ('initech', :d, CURRENT_TIMESTAMP)"
            ),
            {"d": definition},
        )
    code, _, err = cli("status")
    assert code == 2
    assert err == (
        "arsync: configuration error: stored company 'initech': timezone: unknown time zone 'Mars/Base'"
        " (`arsync company remove initech`, then add it again corrected)\n"
    )
    assert cli("company", "remove", "initech")[0] == 0
    assert cli("status")[0] == 0


def test_a_stored_companys_configuration_error_names_it_not_the_file(cli, tmp_path, monkeypatch):
    # the file's companies[2] does not exist: the admin looked for it there in vain
    monkeypatch.delenv("INITECH_SECRET_UNSET", raising=False)
    extra = tmp_path / "tenants.toml"
    extra.write_text(
        company_toml("initech").replace('client_id = "x"', 'client_secret_env = "INITECH_SECRET_UNSET"')
    )
    assert cli("company", "add", str(extra))[0] == 0
    code, _, err = cli("sync", "initech")
    assert code == 2
    assert err == (
        "arsync: configuration error: stored company 'initech' (`arsync company add`): "
        "connection.client_secret_env: environment variable INITECH_SECRET_UNSET is not set\n"
    )
    monkeypatch.delenv("ACME_SECRET_UNSET", raising=False)
    cli.config.write_text(
        cli.config.read_text().replace('client_id = "x"', 'client_secret_env = "ACME_SECRET_UNSET"', 1)
    )
    code, _, err = cli("sync", "acme")  # the file's own companies are still named in it
    assert code == 2 and f"{cli.config}: companies[0].connection.client_secret_env" in err
