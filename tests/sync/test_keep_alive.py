"""The daemon's daily keep-alive: a refresh token about to expire unused is rotated in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import Tokens
from connectors.simulators.generator import sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.credentials import DbCredentials
from store.crypto import SecretBox
from store.db import upgrade
from sync.app import App
from sync.config import parse_config
from sync.jobs import JobContext, keep_alive

NOW = datetime.now(UTC)


def opened(store_url: str, sim: QuickBooksSimulator, companies: tuple[str, ...]) -> App:
    """A migrated store for `companies`, each connected to `sim`'s realm (secret in KA_SECRET)."""
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
                for company in companies
            ],
        }
    )
    upgrade(App.open(config, migrated=False).engine)
    return App.open(config)


def test_keep_alive_rotates_only_tokens_close_to_expiry(store_url, monkeypatch):
    with QuickBooksSimulator(sample_company("quickbooks", today=NOW.date())) as sim:
        monkeypatch.setenv("KA_SECRET", sim.tokens.client_secret)
        app = opened(store_url, sim, ("soon", "later", "never-connected"))
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


def test_keep_alive_goes_on_past_a_company_whose_tokens_cannot_be_read(store_url, monkeypatch):
    """SPEC 3/6: the daemon keeps refresh tokens alive. One company whose stored tokens
    cannot be opened with the current ARSYNC_SECRET_KEY (sealed with a previous key) must be
    reported for that company, not stop the job: the companies after it in the file still get
    their refresh tokens rotated before they expire unused (else those connections are lost)."""
    with QuickBooksSimulator(sample_company("quickbooks", today=NOW.date())) as sim:
        monkeypatch.setenv("KA_SECRET", sim.tokens.client_secret)
        monkeypatch.setenv("ARSYNC_SECRET_KEY", "the-current-key")
        app = opened(store_url, sim, ("old-key", "soon"))
        assert app.box.encrypting
        old = {}
        for company, box in (("old-key", SecretBox("a-previous-key")), ("soon", app.box)):
            pair = sim.tokens.issue()
            old[company] = pair.refresh_token
            DbCredentials(app.engine, company, box).save(
                Tokens(
                    pair.access_token, pair.refresh_token, NOW + timedelta(hours=1), NOW + timedelta(days=3)
                )
            )
        try:
            keep_alive(JobContext(app, app.config, lambda: datetime.now(UTC), lambda: False, "test"))
            soon = DbCredentials(app.engine, "soon", app.box).load()
            assert soon.refresh_token != old["soon"], "keep-alive stopped at the unreadable company"
            assert sim.tokens.check(soon.access_token)
        finally:
            app.close()
