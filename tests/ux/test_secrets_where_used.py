"""Secrets are required only by the commands that use them, with the same one-line message."""

from __future__ import annotations

import pytest

CONFIG = """
[store]
url = "{url}"

[mail]
transport = "smtp"
smtp_username = "billing"
smtp_password_env = "UX_TEST_SMTP_PASSWORD_UNSET"

[[companies]]
id = "acme"
name = "Acme"
[companies.connection]
kind = "quickbooks"
realm_id = "1"
client_secret_env = "UX_TEST_ACME_SECRET"

[[companies]]
id = "globex"
name = "Globex"
[companies.connection]
kind = "xero"
tenant_id = "t"
client_secret_env = "UX_TEST_GLOBEX_SECRET_UNSET"
"""
CLIENT_SECRET = "companies[1].connection.client_secret_env: environment variable UX_TEST_GLOBEX_SECRET_UNSET"
SMTP = "mail.smtp_password_env: environment variable UX_TEST_SMTP_PASSWORD_UNSET is not set"


@pytest.fixture
def cli(cli_over, sqlite_url, monkeypatch):
    monkeypatch.setenv("UX_TEST_ACME_SECRET", "acme-secret")
    for unset in ("UX_TEST_GLOBEX_SECRET_UNSET", "UX_TEST_SMTP_PASSWORD_UNSET"):
        monkeypatch.delenv(unset, raising=False)
    return cli_over(CONFIG.format(url=sqlite_url))


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("history",),
        ("portal", "conflicts", "globex"),
        ("reminders", "plan", "--dry-run"),
        ("mail", "dispatch", "--dry-run"),
    ],
    ids=" ".join,
)
def test_commands_without_secrets_work_with_them_unset(cli, args):
    code, err = cli(*args)
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    "args, message",
    [
        (("sync",), CLIENT_SECRET),
        (("sync", "globex"), CLIENT_SECRET),
        (("run",), CLIENT_SECRET),
        (("auth", "connect", "globex", "--no-browser"), CLIENT_SECRET),
        (("mail", "dispatch"), SMTP),
        (("invite", "acme", "--all-eligible"), SMTP),
        (("portal", "request-access", "acme", "ap@example.com"), SMTP),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_commands_using_a_secret_name_its_key(cli, args, message):
    code, err = cli(*args)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "arsync.toml" in err


def test_a_company_whose_secret_is_set_syncs_without_the_others(cli):
    code, err = cli("sync", "acme")
    assert code == 1  # not connected yet: the work failed, the configuration is fine
    assert "is not set" not in err and "not synced: acme" in err


TYPO = """
[store]
url = "{url}"

[[companies]]
id = "acme"
name = "Acme"
[companies.connection]
kind = "quickbooks"
realm_id = "1"

[[companies]]
id = "globex"
name = "Globex"
[companies.connection]
kind = "xeor"
tenant_id = "t"
"""


@pytest.mark.parametrize("args", [("sync",), ("sync", "globex")], ids=" ".join)
def test_a_connection_kind_nobody_provides_is_a_configuration_error(cli_over, sqlite_url, args):
    # exit 2 naming the key, not a failed sync recorded in the history at every run
    cli = cli_over(TYPO.format(url=sqlite_url))
    code, err = cli(*args)
    assert code == 2, err
    assert (
        err.count("\n") == 1
        and "arsync.toml: companies[1].connection.kind: unknown connector kind 'xeor'" in err
    )
    assert cli("history", "globex") == (0, "")


def test_a_connection_kind_is_checked_only_for_the_companies_synced(cli_over, sqlite_url):
    cli = cli_over(TYPO.format(url=sqlite_url))
    code, err = cli("sync", "acme")
    assert code == 1 and "unknown connector kind" not in err  # not connected: the work failed
    assert cli("status")[0] == 0


@pytest.mark.parametrize(
    ("kind", "key"), [("quickbooks", "realm_id"), ("xero", "tenant_id")], ids=["quickbooks", "xero"]
)
def test_a_built_in_connection_without_its_id_is_a_configuration_error(cli_over, sqlite_url, kind, key):
    # it was a failed sync ("connection.realm_id is required ..."), exit 1, at every run
    cli = cli_over(
        f'[store]\nurl = "{sqlite_url}"\n[[companies]]\nid = "acme"\nname = "Acme"\n'
        f'[companies.connection]\nkind = "{kind}"\n{key} = " "\n'
    )
    code, err = cli("sync", "acme")
    assert code == 2, err
    assert err.count("\n") == 1
    assert f"arsync.toml: companies[0].connection.{key}: required for a {kind} connection" in err


@pytest.mark.parametrize(
    "args",
    [("invite", "acme", "--all-eligible"), ("portal", "request-access", "acme", "ap@example.com")],
    ids=" ".join,
)
def test_inviting_without_a_portal_url_is_a_configuration_error(cli_over, sqlite_url, tmp_path, args):
    # the link was a bare /invite/TOKEN, mailed, superseding the contact's working invitations
    cli = cli_over(
        f'[store]\nurl = "{sqlite_url}"\n[mail]\nfile_directory = "{tmp_path / "outbox"}"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\n[companies.connection]\nkind = "quickbooks"\n'
    )
    code, err = cli(*args)
    assert code == 2, err
    assert err.count("\n") == 1 and "arsync.toml: companies[0].portal_url: required to invite" in err
    assert not (tmp_path / "outbox").exists()


@pytest.mark.parametrize("args", [("mail", "dispatch"), ("invite", "acme", "--all-eligible")], ids=" ".join)
def test_a_file_directory_that_is_a_file_is_a_configuration_error(cli_over, sqlite_url, tmp_path, args):
    # every message was "to retry" for ever (FileExistsError) and the commands exited 0; the
    # folder is named plainly, not as joined to the config file's folder ("/tmp/x/../x/outbox")
    (tmp_path / "outbox").write_text("not a folder")
    cli = cli_over(
        f'[store]\nurl = "{sqlite_url}"\n'
        f'[mail]\ntransport = "file"\nfile_directory = "../{tmp_path.name}/outbox"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\nportal_url = "https://portal.acme.example"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )
    code, err = cli(*args)
    assert code == 2, err
    assert err.count("\n") == 1
    assert f"arsync.toml: mail.file_directory: '{tmp_path / 'outbox'}' is not a directory" in err
