"""`arsync status --now` (SPEC 6: every command that depends on the current time takes it)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sync.cli import main


def test_status_judges_the_next_sync_at_now_and_refuses_a_bad_now(cli, capsys, tmp_path):
    """`status` refused `--now` (exit 2, "No such option"), and a due time already past, with
    no worker running, was shown as if still to come. It takes `--now`, and says "due now" once
    the due time has come at that instant."""
    assert cli("reminders", "plan", "--dry-run")[0] == 0  # registers acme, due at once
    config = tmp_path / "arsync.toml"  # the fixture's

    def status(now: str) -> str:
        capsys.readouterr()
        assert main(["--config", str(config), "status", "--json", "--now", now]) == 0
        [acme] = json.loads(capsys.readouterr().out)
        return acme["next_sync"]

    due = status("2026-01-01T00:00:00+00:00")  # before it was registered: still to come
    later = (datetime.fromisoformat(due) + timedelta(hours=2)).isoformat()
    assert status(later) == f"due now (since {due}); no `arsync run` worker is running to start it"

    code, err = cli("status", "--now", "yesterday")
    assert code == 2 and "--now" in err and "not an ISO-8601 date-time: 'yesterday'" in err
