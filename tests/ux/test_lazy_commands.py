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
