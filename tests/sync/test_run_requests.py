# ruff: noqa: F811 - the qbo fixture is imported, then requested by name
"""A sync that ends early records the API requests it made, not only its committed pages'.

`arsync history` and the `arsync_api_calls` metric count a run's requests against the
provider's limits; a failed run showed 0 (or its committed pages' count) after spending its
retries, its token refresh and its pages asked ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from connectors.base import Tokens
from store.credentials import DbCredentials
from sync.app import App
from sync.config import load_config
from sync.runner import sync_one
from tests.sync.test_auth_cli import qbo, setup  # noqa: F401 - qbo is a fixture


def test_a_failed_sync_records_every_request_it_made(tmp_path, store_url, qbo, monkeypatch):
    config, env = setup(tmp_path, store_url, qbo)
    for name in ("ACME_SECRET", "ARSYNC_SECRET_KEY"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    app = App.open(load_config(config))
    try:
        pair = qbo.tokens.issue()
        expired = datetime.now(UTC) - timedelta(minutes=1)  # the sync refreshes first: one request
        DbCredentials(app.engine, "acme", app.box).save(
            Tokens(pair.access_token, pair.refresh_token, expired, expired + timedelta(days=90))
        )
        committed: list[int] = []

        def after_a_page(_summary, page) -> None:  # the pages after the first one fail
            if not committed:
                qbo.faults.add(f"/v3/company/{qbo.realms[0]}/query", "503", count=50)
            committed.append(page.api_calls)

        summary = sync_one(
            app.engine,
            app.box,
            app.company("acme"),
            owner="test",
            options={"concurrent": 1, "page_size": 5, "retry_attempts": 3, "retry_base_wait": 0.001},
            on_page=after_a_page,
        )
        with app.engine.connect() as connection:
            [(status, calls)] = connection.execute(text("SELECT status, api_calls FROM sync_runs")).all()
    finally:
        app.close()

    assert summary.status == "failed" and "503" in (summary.error or ""), summary.error
    seen = qbo.counters.total()  # every request the simulator answered, the refresh included
    assert qbo.counters.requests.get("token") == 1
    assert committed == [2]  # the first page's request and the refresh before it
    assert status == "failed" and calls == summary.api_calls == seen == 2 + 3  # and 3 attempts of the next
