"""A configured, migrated SQLite store with one company, and the CLI run in process against it."""

from __future__ import annotations

import pytest

from sync.cli import main


@pytest.fixture
def cli(tmp_path, sqlite_url, capsys):
    path = tmp_path / "arsync.toml"
    path.write_text(
        f'[store]\nurl = "{sqlite_url}"\n[mail]\nfile_directory = "{tmp_path / "outbox"}"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\n[companies.connection]\nkind = "quickbooks"\n'
    )

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--config", str(path), *args])
        return code, capsys.readouterr().err

    assert run("db", "upgrade")[0] == 0
    return run
