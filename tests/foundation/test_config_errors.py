"""Every bad configuration is exit 2 with a one-line message naming the file and the key."""

from __future__ import annotations

import textwrap

import pytest

from sync.cli import main

GOOD_COMPANY = """
[[companies]]
id = "acme"
name = "Acme Landscaping"
timezone = "America/New_York"
[companies.connection]
kind = "quickbooks"
realm_id = "9130000000000000"
"""

CASES = [
    ("unknown-top-key", "[stor]\nurl = 'x'\n" + GOOD_COMPANY, "stor: unknown key"),
    (
        "unknown-company-key",
        GOOD_COMPANY.replace('name = "Acme Landscaping"', 'name = "A"\ncolour = "red"'),
        "companies[0].colour: unknown key",
    ),
    (
        "wrong-type",
        GOOD_COMPANY.replace('timezone = "America/New_York"', 'sync_interval_minutes = "15"'),
        "companies[0].sync_interval_minutes: Input should be a valid integer",
    ),
    (
        "wrong-bool",
        GOOD_COMPANY.replace('timezone = "America/New_York"', 'auto_invite = "yes"'),
        "companies[0].auto_invite: Input should be a valid boolean",
    ),
    (
        "unknown-zone",
        GOOD_COMPANY.replace("America/New_York", "Mars/Olympus_Mons"),
        "companies[0].timezone: unknown time zone 'Mars/Olympus_Mons'",
    ),
    ("duplicate-id", GOOD_COMPANY + GOOD_COMPANY, "companies[1].id: duplicate company id 'acme'"),
    (
        "malformed-id",
        GOOD_COMPANY.replace('id = "acme"', 'id = "Acme Inc"'),
        "companies[0].id: company id 'Acme Inc' must be 1 to 64 characters of [a-z0-9_-]",
    ),
    (
        "overlong-id",  # PostgreSQL's company_id columns refused it, with an unexpected error
        GOOD_COMPANY.replace('id = "acme"', f'id = "{"a" * 65}"'),
        f"companies[0].id: company id '{'a' * 65}' must be 1 to 64 characters of [a-z0-9_-]",
    ),
    (
        "http-not-loopback",
        GOOD_COMPANY + 'api_base_url = "http://api.example.com/v3"\n',
        "companies[0].connection.api_base_url: plain http:// is accepted only for loopback hosts",
    ),
    (
        "token-url-http",
        GOOD_COMPANY + 'token_url = "http://10.1.2.3/token"\n',
        "companies[0].connection.token_url: plain http:// is accepted only for loopback hosts",
    ),
    (
        "bad-hour",
        GOOD_COMPANY.replace('timezone = "America/New_York"', "delivery_to_hour = 24"),
        "companies[0].delivery_to_hour: Input should be less than or equal to 23",
    ),
    (
        "bad-day",
        GOOD_COMPANY.replace('timezone = "America/New_York"', 'delivery_days = ["mon", "someday"]'),
        "companies[0].delivery_days: unknown day 'someday'",
    ),
    (
        "bad-plan",
        GOOD_COMPANY.replace('timezone = "America/New_York"', 'plan = "gold"'),
        "companies[0].plan: Input should be 'basic', 'pro', 'plus' or 'enterprise'",
    ),
    (
        "missing-connection",
        '[[companies]]\nid = "acme"\nname = "A"\n',
        "companies[0].connection: required key is missing",
    ),
    ("bad-log-level", '[log]\nlevel = "loud"\n', "log.level: Input should be"),
    (  # every message's From header is built from it: each mail command failed "unexpectedly"
        "bad-from-address",
        '[mail]\nfrom_address = "Billing <billing@acme.example>"\n',
        "mail.from_address: 'Billing <billing@acme.example>' is not an email address",
    ),
    ("from-address-no-domain", '[mail]\nfrom_address = "billing"\n', "mail.from_address: 'billing' is not"),
    (  # PostgreSQL refused the company row: "unexpected error: DataError", exit 1
        "nul-in-a-string",
        GOOD_COMPANY.replace('name = "Acme Landscaping"', 'name = "Acme\\u0000Evil"'),
        "companies[0].name: a NUL character (\\u0000) is not allowed",
    ),
    (
        "nul-in-a-list",
        GOOD_COMPANY.replace('timezone = "America/New_York"', 'delivery_days = ["mon", "tue\\u0000"]'),
        "companies[0].delivery_days: a NUL character",
    ),
    ("nul-in-a-path", '[mail]\nfile_directory = "out\\u0000box"\n', "mail.file_directory: a NUL character"),
    (  # it listened on every interface (bind to ""), /metrics and the webhooks public
        "empty-http-host",
        '[http]\nhost = ""\n',
        "http.host: empty: give the address to listen on (0.0.0.0 for every interface)",
    ),
    (  # a retention of no days would prune every run as it finished
        "keep-runs-zero-days",
        "[store]\nkeep_runs_days = 0\n",
        "store.keep_runs_days: Input should be greater than or equal to 1",
    ),
    (
        "keep-runs-not-days",
        '[store]\nkeep_runs_days = "90d"\n',
        "store.keep_runs_days: Input should be a valid",
    ),
    (  # a retention of no days would prune every message as it was sent
        "keep-outbox-zero-days",
        "[store]\nkeep_outbox_days = 0\n",
        "store.keep_outbox_days: Input should be greater than or equal to 1",
    ),
    (
        "keep-outbox-too-many-days",
        "[store]\nkeep_outbox_days = 36501\n",
        "store.keep_outbox_days: Input should be less than or equal to 36500",
    ),
    ("not-toml", "[store\nurl=", "not valid TOML"),
    ("key-with-newline", '"stor\\n" = 1\n', "'stor\\n': unknown key"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_configuration_exits_2_naming_file_and_key(tmp_path, capsys, text, expected):
    path = tmp_path / "arsync.toml"
    path.write_text(textwrap.dedent(text))

    code = main(["--config", str(path), "status"])

    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err
    assert expected in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_file_is_exit_2(tmp_path, capsys):
    code = main(["--config", str(tmp_path / "nope.toml"), "status"])
    assert code == 2
    assert "nope.toml: configuration file not found" in capsys.readouterr().err


def test_config_from_environment_variable(tmp_path, capsys, monkeypatch):
    path = tmp_path / "elsewhere.toml"
    path.write_text("[stor]\n")
    monkeypatch.setenv("ARSYNC_CONFIG", str(path))
    assert main(["status"]) == 2
    assert "elsewhere.toml: stor: unknown key" in capsys.readouterr().err


def test_example_config_is_valid(monkeypatch):
    from pathlib import Path

    from sync.config import load_config

    monkeypatch.setenv("ACME_CLIENT_SECRET", "s")
    monkeypatch.setenv("GLOBEX_CLIENT_SECRET", "s")
    config = load_config(Path(__file__).parents[2] / "config.example.toml")
    assert [c.id for c in config.companies]
    assert config.companies[0].reminder_offsets_days == [-3, 0, 7, 14, 30]
    assert config.store.keep_runs_days == 90
    assert config.store.keep_outbox_days == 90
