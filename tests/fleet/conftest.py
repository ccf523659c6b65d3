"""A configuration file with a few companies (no API behind them) and the CLI run in-process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync.cli import main


def company_toml(cid: str, **extra: object) -> str:
    settings = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in extra.items())
    return f"""
[[companies]]
id = "{cid}"
name = "{cid.title()} Ltd"
{settings}[companies.connection]
kind = "quickbooks"
realm_id = "1"
client_id = "x"
api_base_url = "http://127.0.0.1:9/v3"
token_url = "http://127.0.0.1:9/token"
"""


@dataclass
class Cli:
    config: Path
    store_url: str
    capsys: pytest.CaptureFixture

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err


@pytest.fixture
def cli(store_url: str, tmp_path: Path, capsys, monkeypatch) -> Cli:
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n' + company_toml("acme") + company_toml("globex"))
    runner = Cli(config, store_url, capsys)
    assert runner("db", "upgrade")[0] == 0
    yield runner
    os.environ.pop("ARSYNC_CONFIG", None)
