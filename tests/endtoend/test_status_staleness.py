"""`arsync status` says how old the portal's data is once syncs fail, not only that the last
one failed: an admin reading "last sync: a minute ago [failed]" could not tell whether the
books were last read a minute or a week ago."""

from __future__ import annotations

import json

from store.crypto import SecretBox
from store.db import make_engine
from store.glance import company_glance
from store.owners import worker_id
from sync.config import load_config
from sync.runner import sync_one
from tests.endtoend.conftest import World


def _block(out: str, company: str) -> list[str]:
    lines = out.splitlines()
    start = lines.index(f"{company} (quickbooks)")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start + 1 : end]


def test_a_failing_company_shows_when_its_data_was_last_synced(world: World):
    world.sync("qbo")
    [ok] = [row for row in json.loads(world.cli("status", "--json")[1]) if row["company"] == "qbo"]
    assert ok["last_sync_status"] == "ok" and ok["last_success"]
    assert not [line for line in _block(world.cli("status")[1], "qbo") if "last success" in line]

    # the refresh token is refused from now on: the next sync fails, the data stays as it was
    code, _, err = world.cli(
        "auth", "set-tokens", "qbo", "--access-token", "gone", "--refresh-token", "gone", "--expires-in", "0"
    )
    assert code == 0, err
    code, out, _ = world.cli("sync", "--json", "qbo")
    assert code == 1 and json.loads(out)["status"] == "failed"

    code, out, _ = world.cli("status")
    assert code == 0
    block = _block(out, "qbo")
    assert any(line.strip().endswith("[failed]") for line in block if "last sync:" in line), block
    assert f"  last success: {ok['last_success']}" in block


def test_a_sync_in_progress_shows_running(world: World):
    """Its process holds the company's sync lease: running, not taken for a killed one."""
    [company] = [c for c in load_config(world.config).companies if c.id == "qbo"]
    engine = make_engine(world.store_url)
    seen: list[str] = []
    try:
        summary = sync_one(
            engine,
            SecretBox(None),
            company,
            owner=worker_id(),
            on_page=lambda _summary, _page: seen.append(company_glance(engine, "qbo")["last_run"]["status"]),
        )
    finally:
        engine.dispose()
    assert summary.status == "ok" and seen and set(seen) == {"running"}


def test_a_sync_that_cannot_begin_is_a_failed_run_in_status_and_history(world: World):
    """A worker (`arsync run` checks kinds, not ids) syncing a company whose connection lacks
    its tenant id failed every interval before a run began: only its log said so, while
    `status` showed the last good sync and a next one, as if all were well."""
    world.sync("xero")
    [company] = [c for c in load_config(world.config).companies if c.id == "xero"]
    broken = company.model_copy(
        update={"connection": company.connection.model_copy(update={"tenant_id": ""})}
    )
    engine = make_engine(world.store_url)
    try:
        summary = sync_one(engine, SecretBox(None), broken, owner=worker_id())
    finally:
        engine.dispose()
    assert summary.status == "failed" and "tenant_id" in summary.error

    [xero] = [row for row in json.loads(world.cli("status", "--json")[1]) if row["company"] == "xero"]
    assert xero["last_sync_status"] == "failed" and xero["last_sync_error"] == summary.error
    assert xero["last_success"] is not None
    [last, *_] = json.loads(world.cli("history", "xero", "--json")[1])
    assert (last["status"], last["error"]) == ("failed", summary.error)
