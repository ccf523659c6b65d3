"""The SQLite store file is its owner's alone: it holds tokens (plain without
ARSYNC_SECRET_KEY) and queued invitation mail, whose links open a customer's portal."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sync.cli import main


def test_the_store_arsync_creates_is_readable_by_its_owner_only(tmp_path: Path):
    """With the usual umask (022) `arsync db upgrade` left the store, its WAL and shared memory
    0644: any local user could read the tokens and take over a queued invitation."""
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "arsync.db"}"\n')
    previous = os.umask(0o022)
    try:
        assert main(["--config", str(config), "db", "upgrade"]) == 0
        assert main(["--config", str(config), "status"]) == 0  # opens it again: WAL files
    finally:
        os.umask(previous)
    made = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("arsync.db"))
    assert made[0] == "arsync.db"
    assert {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in made} == dict.fromkeys(
        made, 0o600
    )


def test_a_store_file_that_exists_keeps_the_mode_its_owner_gave_it(tmp_path: Path):
    store = tmp_path / "shared.db"
    store.touch(mode=0o640)
    os.chmod(store, 0o640)  # an operator's choice (a group that backs it up)
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{store}"\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert stat.S_IMODE(store.stat().st_mode) == 0o640
