"""The command registry: every entry resolves, and listing commands imports none of them."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from sync.cli import COMMANDS, load_command

HEAVY = ("sqlalchemy", "sqlmodel", "pydantic", "quickbooks", "xero_python", "jinja2", "fastapi", "fpdf")


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_registered_command_resolves(path):
    target, summary = COMMANDS[path]
    command = load_command(target)
    assert isinstance(command, click.Command)
    assert command.name == path.split(" ")[-1]
    assert summary.strip()


def test_top_level_help_imports_no_heavy_module():
    probe = (
        "import json, sys\n"
        "from sync.cli import main\n"
        "code = main(['--help'])\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    outcome = json.loads(done.stderr.strip().splitlines()[-1])
    assert outcome == {"code": 0, "heavy": []}
    for path in COMMANDS:
        if " " not in path:
            assert f"  {path} " in done.stdout


def test_sub_command_registered_from_another_module_is_listed_and_loads():
    def arsync(*args):
        return subprocess.run(
            [sys.executable, "-m", "sync", *args], capture_output=True, text=True, timeout=60
        )

    listed = arsync("portal", "--help")
    assert listed.returncode == 0
    assert "request-access" in listed.stdout and "conflicts" in listed.stdout
    loaded = arsync("portal", "request-access", "--help")
    assert loaded.returncode == 0
    assert "Usage: arsync portal request-access [OPTIONS] COMPANY EMAIL" in loaded.stdout


def test_head_revision_read_from_the_files_is_alembics():
    from alembic.script import ScriptDirectory

    from store.db import MIGRATIONS, head_revision

    assert head_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_status_loads_no_module_it_does_not_use(tmp_path, sqlite_url, monkeypatch):
    """No Alembic, SDK, template engine or web framework; no logging library (structlog and
    rich are loaded by commands that log) and no token cipher without a key."""
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "{sqlite_url}"\n[[companies]]\nid = "acme"\nname = "Acme"\n'
        '[companies.connection]\nkind = "quickbooks"\n'
    )
    monkeypatch.setenv("ARSYNC_SECRET_KEY", "")
    arsync = [sys.executable, "-m", "sync", "--config", str(config)]
    upgraded = subprocess.run([*arsync, "db", "upgrade"], capture_output=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    unused = {
        "alembic",
        "quickbooks",
        "xero_python",
        "jinja2",
        "fastapi",
        "fpdf",
        "structlog",
        "rich",
        "cryptography",
    }
    probe = (
        "import json, sys\n"
        "from sync.cli import main\n"
        f"code = main(['--config', {str(config)!r}, 'status'])\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        f"print(json.dumps({{'code': code, 'loaded': sorted(loaded & {unused!r})}}), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"code": 0, "loaded": []}
    assert "acme (quickbooks)" in done.stdout
