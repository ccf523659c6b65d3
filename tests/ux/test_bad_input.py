"""Input the CLI cannot use, and stores it cannot use: one line naming what is wrong, the
documented exit code (2 bad usage or configuration, 1 the work failed), no traceback, and
nothing stored changed (README "Command line")."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from store.db import head_revision, make_engine
from sync.cli import main


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("reminders", "plan", "--dry-run", "--now", "0001-01-01"),
        ("mail", "dispatch", "--dry-run", "--now", "0001-01-01T00:00:00+01:00"),
        ("reminders", "plan", "--now", "9999-12-31"),
        ("statement", "acme", "c1", "--now", "1969-12-31"),
    ],
    ids=lambda args: " ".join(args[:2] + args[-1:]),
)
def test_an_instant_the_rules_cannot_count_from_is_bad_usage_naming_now(cli, args):
    code, err = cli(*args)
    assert code == 2 and "Invalid value for --now:" in err and "Traceback" not in err


def test_an_argument_that_is_not_utf8_is_bad_usage(cli):
    code, err = cli("customer", "invoices", "acme", "c\udcff")  # the shell passed the byte 0xff
    assert code == 2 and one_line(err) == "arsync: argument 'c\\xff' is not valid UTF-8"


def test_a_statement_from_after_today_without_an_end_is_bad_usage(cli):
    code, err = cli("statement", "acme", "c1", "--from", "2027-06-01", "--now", "2026-12-04T12:00:00")
    assert code == 2 and "Invalid value for --from: 2027-06-01 is after today (2026-12-04)" in err


def write_config(tmp_path, url: str):
    path = tmp_path / "arsync.toml"
    path.write_text(f'[store]\nurl = "{url}"\n')
    return path


def _unopenable_stores(tmp_path):
    """(store.url as an operator may write it, the absolute file, the cause the message names)."""
    (tmp_path / "a-folder.db").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n")
    return [
        (f"sqlite:///{tmp_path}/work/../missing/x.db", tmp_path / "missing" / "x.db", "the folder "
         f"{tmp_path / 'missing'} does not exist (unable to open database file)"),
        (f"sqlite:///{tmp_path}/a-folder.db", tmp_path / "a-folder.db",
         "that is a folder, not a file (unable to open database file)"),
        (f"sqlite:///{tmp_path}/notes.txt", tmp_path / "notes.txt",
         "that file is not a SQLite database (file is not a database)"),
    ]  # fmt: skip


@pytest.mark.parametrize("command", [("status",), ("history",), ("db", "upgrade")])
def test_a_store_path_that_cannot_be_opened_is_a_configuration_error_naming_the_file_and_cause(
    tmp_path, capsys, command
):
    (tmp_path / "c").mkdir()
    for url, path, cause in _unopenable_stores(tmp_path):
        config = write_config(tmp_path / "c", url)
        assert main(["--config", str(config), *command]) == 2
        assert one_line(capsys.readouterr().err) == (
            f"arsync: configuration error: store.url: cannot open the store at {path}: {cause}"
        )


def test_an_unreachable_postgresql_store_is_one_line(tmp_path, capsys):
    config = write_config(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/test")
    assert main(["--config", str(config), "history"]) == 1
    assert one_line(capsys.readouterr().err).startswith("arsync: the store (store.url) failed: ")


def test_a_store_a_newer_arsync_upgraded_is_refused_by_every_command_and_left_alone(
    cli, tmp_path, sqlite_url, capsys
):
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    before = (tmp_path / "before.db").as_posix()
    shutil.copy(sqlite_url.removeprefix("sqlite:///"), before)
    for command in (("status",), ("db", "upgrade")):
        code, err = cli(*command)
        assert code == 1
        assert f"is at revision 0099_future, newer than this arsync's schema ({head_revision()})" in one_line(
            err
        )
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0099_future"
    engine.dispose()


def test_a_reading_command_on_a_store_not_created_yet_says_so_and_creates_nothing(tmp_path, capsys):
    store = tmp_path / "not-yet.db"
    config = write_config(tmp_path, f"sqlite:///{store}")
    for command in (("status",), ("history",)):
        assert main(["--config", str(config), *command]) == 1
        assert (
            one_line(capsys.readouterr().err)
            == f"arsync: no store at {store} yet; run `arsync db upgrade` first"
        )
    assert not store.exists()
    assert main(["--config", str(config), "db", "upgrade"]) == 0 and store.exists()


def test_a_relative_sqlite_store_is_the_one_beside_the_configuration_file(tmp_path, capsys, monkeypatch):
    """`url = "sqlite:///arsync.db"` (the example's) names one store wherever arsync runs
    from: the daemon under systemd (working directory /) and the admin's shell share it."""
    folder = tmp_path / "etc"
    folder.mkdir()
    config = write_config(folder, "sqlite:///arsync.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert (folder / "arsync.db").exists() and not (elsewhere / "arsync.db").exists()
    monkeypatch.chdir(folder)
    capsys.readouterr()
    assert main(["--config", "arsync.toml", "history"]) == 0, capsys.readouterr().err
