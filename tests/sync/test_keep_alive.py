"""The daemon's daily keep-alive: a refresh token about to expire unused is rotated in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import Tokens
from connectors.simulators.generator import sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.credentials import DbCredentials
from store.db import upgrade
from sync.app import App
from sync.config import parse_config
from sync.jobs import JobContext, keep_alive

NOW = datetime.now(UTC)


def test_keep_alive_rotates_only_tokens_close_to_expiry(store_url, monkeypatch):
    with QuickBooksSimulator(sample_company("quickbooks", today=NOW.date())) as sim:
        monkeypatch.setenv("KA_SECRET", sim.tokens.client_secret)
        config = parse_config(
            {
                "store": {"url": store_url},
                "companies": [
                    {
                        "id": company,
                        "name": company,
                        "connection": {
                            "kind": "quickbooks",
                            "realm_id": sim.realms[0],
                            "client_id": sim.tokens.client_id,
                            "client_secret_env": "KA_SECRET",
                            "api_base_url": sim.api_url,
                            "token_url": sim.token_url,
                        },
                    }
                    for company in ("soon", "later", "never-connected")
                ],
            }
        )
        app = App.open(config, migrated=False)
        upgrade(app.engine)
        app = App.open(config)
        old = {}
        for company, days_left in (("soon", 3), ("later", 40)):
            pair = sim.tokens.issue()
            old[company] = pair.refresh_token
            DbCredentials(app.engine, company, app.box).save(
                Tokens(
                    pair.access_token,
                    pair.refresh_token,
                    NOW + timedelta(hours=1),
                    NOW + timedelta(days=days_left),
                )
            )
        keep_alive(JobContext(app, app.config, lambda: datetime.now(UTC), lambda: False, "test"))
        soon = DbCredentials(app.engine, "soon", app.box).load()
        later = DbCredentials(app.engine, "later", app.box).load()
        assert soon.refresh_token != old["soon"]  # rotated, and the new one is what the provider knows
        assert sim.tokens.check(soon.access_token)
        assert later.refresh_token == old["later"]  # far from expiry: left alone
        assert sim.tokens.refreshes == 1
        assert DbCredentials(app.engine, "never-connected", app.box).load() is None
        app.close()
