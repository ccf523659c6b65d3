"""The CLI run in process over a configuration of the test's own, its SQLite store migrated."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sync.cli import main

Run = Callable[..., tuple[int, str]]


@pytest.fixture
def cli_over(tmp_path, capsys) -> Callable[[str], Run]:
    """`cli_over(config_text)`: `run(*args) -> (exit code, stderr)` against that configuration."""

    def over(text: str) -> Run:
        path = tmp_path / "arsync.toml"
        path.write_text(text)

        def run(*args: str) -> tuple[int, str]:
            capsys.readouterr()
            code = main(["--config", str(path), *args])
            return code, capsys.readouterr().err

        assert run("db", "upgrade")[0] == 0
        return run

    return over


@pytest.fixture
def cli(cli_over, tmp_path, sqlite_url) -> Run:
    """One company, `acme`, mail written as files."""
    return cli_over(
        f'[store]\nurl = "{sqlite_url}"\n[mail]\nfile_directory = "{tmp_path / "outbox"}"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\nportal_url = "https://portal.acme.example"\n'
        '[companies.connection]\nkind = "quickbooks"\n'
    )
