"""`arsync sync --now` replays business time; it must not bend what is real. A run dated
days ahead is not "the last sync" after the real runs begun since, and a daily API limit it
runs into ends at the real time the provider gave (Retry-After), not that long after the
replayed instant, which held every real sync back for days."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from connectors.simulators.xero import XeroSimulator
from connectors.simulators.xero_limits import XeroLimits
from tests.endtoend.books import xero_books
from tests.endtoend.conftest import World, company_block

AHEAD = timedelta(days=3)


def test_a_run_dated_ahead_is_not_the_last_sync_after_real_runs(world):
    ahead = (datetime.now(UTC) + AHEAD).replace(microsecond=0)
    world.sync("qbo", "--now", ahead.isoformat())
    before_real = datetime.now(UTC)
    world.sync("qbo")

    code, out, _ = world.cli("status", "--json")
    [qbo] = [row for row in json.loads(out) if row["company"] == "qbo"]
    assert before_real <= datetime.fromisoformat(qbo["last_sync"]) < ahead
    assert before_real <= datetime.fromisoformat(qbo["last_success"]) < ahead
    code, out, _ = world.cli("history", "qbo", "--json")
    started = [datetime.fromisoformat(run["started_at"]) for run in json.loads(out)]
    assert len(started) == 2 and started[0] < ahead == started[1]  # the run begun last first


@pytest.fixture
def tight_xero(store_url, tmp_path, capsys, monkeypatch):
    """The Xero books behind a simulator whose daily limit one full sync spends."""
    books = xero_books(datetime.now(UTC).date())
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("ARSYNC_CONFIG", raising=False)
    with XeroSimulator([books], limits=XeroLimits(per_day=3)) as sim:
        monkeypatch.setenv("E2E_XERO_SECRET", sim.tokens.client_secret)
        config = tmp_path / "arsync.toml"
        block = company_block("xero", "xero", sim, {}, tenant=books.id)
        config.write_text(f'[store]\nurl = "{store_url}"\n[log]\nlevel = "warning"\n{block}')
        world = World(config, store_url, None, sim, None, books, capsys)
        assert world.cli("db", "upgrade")[0] == 0
        pair = sim.tokens.issue()
        code, _, err = world.cli(
            "auth", "set-tokens", "xero", "--access-token", pair.access_token,
            "--refresh-token", pair.refresh_token, "--expires-in", "1800",
        )  # fmt: skip
        assert code == 0, err
        yield world


def test_a_daily_limit_met_in_a_replay_ends_when_the_provider_said(tight_xero):
    ahead = (datetime.now(UTC) + AHEAD).replace(microsecond=0)
    before = datetime.now(UTC)
    code, out, _ = tight_xero.cli("sync", "xero", "--json", "--now", ahead.isoformat())
    [run] = map(json.loads, out.splitlines())
    assert code == 1 and "resumes at" in run["error"], run

    [(until,)] = tight_xero.rows("SELECT blocked_until FROM connections WHERE company_id = 'xero'")
    until = until if isinstance(until, datetime) else datetime.fromisoformat(str(until))
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    assert before < until <= datetime.now(UTC) + timedelta(days=1)  # Retry-After from the real now
