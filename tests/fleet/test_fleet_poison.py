"""A company whose syncs keep dying with their workers (SPEC §11: a dead worker's companies go
to the others) is taken up again at once the first time, then held back: the worker that
takes it next is not killed at once, and keeps the other companies syncing meanwhile.
`arsync status` says why. Real processes on PostgreSQL, time 60 times faster: a claim not
renewed expires after 3 s, the second abandoned run in a row waits 5 s more. The poisoned
company's QuickBooks answers after 1 s (its sync is killed while it runs), the other's at
once (its syncs, every second, are short: a worker killed with one inside counts it too)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from connectors.base import Tokens
from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.holds import held_for
from store.schedule import schedule_row
from tests.fleet.test_fleet import company_block, serving, wait_for

SCALE = 60
RUNNING = "SELECT COUNT(*) FROM sync_runs WHERE company_id = :c AND status = 'running' AND started_at >= :t"
STARTS = (
    "SELECT started_at, status FROM sync_runs WHERE company_id = :c AND started_at >= :t ORDER BY started_at"
)


def test_a_company_whose_syncs_kill_their_workers_is_held_back_and_the_others_go_on(
    pg_url, tmp_path, monkeypatch, capsys
):
    with (
        serving(pg_url, tmp_path, monkeypatch, latency=0.0) as fleet,
        QuickBooksSimulator(latency=1.0) as slow,
    ):
        monkeypatch.setenv("SLOW_QBO_SECRET", slow.tokens.client_secret)
        realm = "9130000000000999"
        slow.add_company(
            generate_company(
                "quickbooks",
                seed=9,
                customers=3,
                invoices=6,
                today=datetime.now(UTC).date(),
                company_id=realm,
            )
        )
        poison = company_block("poison", slow, realm).replace("FLEET_QBO_SECRET", "SLOW_QBO_SECRET")
        calm = company_block("calm", fleet.sim, fleet.add_realm("calm", 1))
        fleet.config.write_text(f'[store]\nurl = "{pg_url}"\n' + poison + calm)
        fleet.start(1, scale=SCALE)
        assert wait_for(lambda: schedule_row(fleet.engine, "calm") is not None, 30)
        fleet.connect("calm")
        pair, expires = slow.tokens.issue(), datetime.now(UTC) + timedelta(hours=1)
        DbCredentials(fleet.engine, "poison", SecretBox(None)).save(
            Tokens(pair.access_token, pair.refresh_token, expires, expires + timedelta(days=90))
        )

        def running(cid: str, since: datetime) -> bool:
            return fleet.rows(RUNNING, c=cid, t=since)[0][0] > 0

        def kill_when_running(since: datetime) -> str:
            alone = lambda: running("poison", since) and not running("calm", since - timedelta(minutes=1))  # noqa: E731
            assert wait_for(alone, 30)
            owner = schedule_row(fleet.engine, "poison")["claimed_by"]
            victim = fleet.workers[-1]
            victim.kill()
            victim.wait()  # reaped: a zombie would still look alive to the lease's dead-owner check
            return owner

        kill_when_running(datetime.now(UTC) - timedelta(minutes=1))
        second = datetime.now(UTC)
        fleet.start(1, scale=SCALE)  # takes the abandoned run up as soon as its claim expires
        owner = kill_when_running(second)
        row = schedule_row(fleet.engine, "poison")
        assert row["abandoned_runs"] == 1  # one abandoned before the run just killed
        expired = row["claimed_until"]
        held_until = expired + held_for(1) / SCALE

        # A survivor, started before the hold begins: this time the sync is let finish. Started
        # after the claim's expiry, as it was, a start slower than the hold (a loaded machine)
        # found both companies due at its first tick, and the poisoned one could go first.
        third = datetime.now(UTC)
        fleet.start(1, scale=SCALE)
        assert wait_for(lambda: datetime.now(UTC) > expired, 10)
        capsys.readouterr()
        assert fleet.cli("status", "--json") == 0
        [shown] = [row for row in json.loads(capsys.readouterr().out) if row["company"] == "poison"]
        assert shown["next_sync"].startswith(f"interrupted on {owner} (exited), "), shown  # of this host
        assert "2 runs in a row not finished: held until" in shown["next_sync"], shown

        finished = lambda: [s for s in fleet.rows(STARTS, c="poison", t=third) if s[1] == "ok"]  # noqa: E731
        assert wait_for(finished, 60), schedule_row(fleet.engine, "poison")
        (resumed, status), *_ = fleet.rows(STARTS, c="poison", t=third)  # then every (scaled) minute
        assert status == "ok"
        assert resumed >= held_until  # not before its hold was over
        calm_runs = [at for at, status in fleet.rows(STARTS, c="calm", t=third) if at < resumed]
        assert calm_runs, "the other company was not synced while the poisoned one was held"
        # a run that ends clears it, as its worker lets the claim go: just after the run's row
        # says ok (the company's health is recomputed in between)
        assert wait_for(lambda: schedule_row(fleet.engine, "poison")["abandoned_runs"] == 0, 10)
