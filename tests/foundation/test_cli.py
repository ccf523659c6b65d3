"""`arsync db upgrade` then `arsync status` through the installed executable, on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ARSYNC = [sys.executable, "-m", "sync"]


def write_config(directory: Path, store_url: str) -> Path:
    path = directory / "arsync.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\ntimezone = "America/New_York"\n'
        '[companies.connection]\nkind = "quickbooks"\nrealm_id = "1"\n'
    )
    return path


def arsync(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ARSYNC_CONFIG"}
    return subprocess.run([*ARSYNC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_upgrade_then_status(tmp_path, store_url):
    config = write_config(tmp_path, store_url)

    before = arsync("--config", str(config), "status", cwd=tmp_path)
    assert before.returncode == 1
    assert "run `arsync db upgrade` first" in before.stderr
    assert "Traceback" not in before.stderr

    upgraded = arsync("--config", str(config), "db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from nothing to revision" in upgraded.stdout

    status = arsync("--config", str(config), "status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert rows[0]["company"] == "acme"
    assert rows[0]["last_sync"] is None
    assert rows[0]["connection"] == "not_connected"
    assert rows[0]["outbox"] == {}


def test_default_config_path_is_cwd(tmp_path, sqlite_url):
    write_config(tmp_path, sqlite_url)
    assert arsync("db", "upgrade", cwd=tmp_path).returncode == 0
    assert "acme (quickbooks)" in arsync("status", cwd=tmp_path).stdout


def test_bad_usage_is_exit_2(tmp_path, sqlite_url):
    config = write_config(tmp_path, sqlite_url)
    arsync("--config", str(config), "db", "upgrade", cwd=tmp_path)
    unknown = arsync("--config", str(config), "history", "nosuchco", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no company 'nosuchco'" in unknown.stderr
    assert arsync("--config", str(config), "frobnicate", cwd=tmp_path).returncode == 2


def test_help_shows_the_product_shape(tmp_path):
    out = arsync("--help", cwd=tmp_path).stdout
    for command in (
        "auth",
        "sync",
        "run",
        "status",
        "history",
        "invite",
        "portal",
        "invoice",
        "customer",
        "reminders",
        "mail",
        "demo",
        "db",
    ):
        assert f"  {command} " in out
