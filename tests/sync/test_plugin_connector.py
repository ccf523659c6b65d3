"""A third-party connector found through the `arsync.connectors` entry-point group."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from connectors.quickbooks.provider import PROVIDER as QUICKBOOKS
from connectors.registry import (
    NoProvider,
    UnknownConnector,
    available_kinds,
    factory_for,
    provider_for,
    token_endpoint,
)
from connectors.xero.provider import PROVIDER as XERO
from store.companies import CompanyRow, register_companies
from store.crypto import SecretBox
from sync.config import parse_config
from sync.runner import sync_one

PLUGIN = """
from portal_rules.records import CustomerRecord, InvoiceRecord, Page
from decimal import Decimal


class TinyConnector:
    kind = "tinyledger"

    def __init__(self, settings, credentials):
        self.settings = settings

    def pages(self, cursor, *, full=False):
        customer = CustomerRecord("c1", "Plug-in Customer", True, ("a@plugin.example",))
        yield Page("customers", (customer,), cursor={"step": 1}, api_calls=1)
        yield Page("invoices", (InvoiceRecord("i1", "c1", "P-1", None, None, "EUR", Decimal("7.25"),
                                                       Decimal("7.25"), True),),
                   cursor={"step": 2}, api_calls=1, full_sync_complete=True)


def create(settings, credentials):
    return TinyConnector(settings, credentials)


def create_with_oauth(settings, credentials):
    return TinyConnector(settings, credentials)


from connectors.oauth import Provider

create_with_oauth.provider = Provider(
    "https://tiny.example/authorize", "https://tiny.example/token", ("ledger.read",)
)
"""


@pytest.fixture
def plugin_installed(tmp_path, monkeypatch):
    (tmp_path / "tinyledger_arsync.py").write_text(PLUGIN)
    dist = tmp_path / "tinyledger_arsync-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyledger-arsync\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""
        [arsync.connectors]
        tinyledger = tinyledger_arsync:create
        tinyoauth = tinyledger_arsync:create_with_oauth
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_plugin_kind_is_found_and_syncs(plugin_installed, engine):
    assert "tinyledger" in available_kinds()
    assert factory_for("tinyledger").__module__ == "tinyledger_arsync"
    config = parse_config(
        {"companies": [{"id": "plug", "name": "Plug", "connection": {"kind": "tinyledger"}}]}
    )
    register_companies(engine, [CompanyRow("plug", "Plug", "UTC", "tinyledger")])
    summary = sync_one(
        engine,
        SecretBox(None),
        config.company("plug"),
        owner="t",
        clock=lambda: datetime(2026, 1, 5, tzinfo=UTC),
    )
    assert (summary.status, summary.customers, summary.invoices, summary.api_calls) == ("ok", 1, 1, 2)
    with engine.connect() as c:
        assert c.execute(text("SELECT invoice_ref, currency FROM portal_invoices")).all() == [("i1", "EUR")]
        if engine.dialect.name == "sqlite":  # a full pull leaves statistics (store.statistics)
            assert summary.full
            assert c.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'invoices'")).scalars().all()


def test_unknown_kind_is_a_clear_failure(engine):
    with pytest.raises(UnknownConnector, match="unknown connector kind 'nosuch'"):
        factory_for("nosuch")
    config = parse_config({"companies": [{"id": "x", "name": "X", "connection": {"kind": "nosuch"}}]})
    summary = sync_one(engine, SecretBox(None), config.company("x"), owner="t")
    assert summary.status == "failed" and "unknown connector kind 'nosuch'" in summary.error


def test_builtin_kinds_bring_their_oauth_provider() -> None:
    assert provider_for("quickbooks") is QUICKBOOKS
    assert provider_for("xero") is XERO
    endpoint = token_endpoint("xero", client_id="id", client_secret="secret")
    assert (endpoint.url, endpoint.refresh_token_lifetime) == (XERO.token_url, timedelta(days=60))
    override = token_endpoint(
        "quickbooks", client_id="id", client_secret="s", token_url="http://127.0.0.1:1/t"
    )
    assert (override.url, override.refresh_token_lifetime) == ("http://127.0.0.1:1/t", None)


def test_plugin_kind_brings_its_provider_through_its_factory(plugin_installed) -> None:
    provider = provider_for("tinyoauth")
    assert (provider.authorize_url, provider.scopes) == ("https://tiny.example/authorize", ("ledger.read",))
    assert token_endpoint("tinyoauth", client_id="i", client_secret="s").url == "https://tiny.example/token"


def test_plugin_without_provider_needs_a_token_url(plugin_installed) -> None:
    with pytest.raises(NoProvider, match=r"connector kind 'tinyledger'.*connection\.token_url"):
        provider_for("tinyledger")
    with pytest.raises(NoProvider, match=r"'tinyledger'.*connection\.token_url"):
        token_endpoint("tinyledger", client_id="i", client_secret="s")
    configured = token_endpoint(
        "tinyledger", client_id="i", client_secret="s", token_url="https://t.example/x"
    )
    assert (configured.url, configured.refresh_token_lifetime) == ("https://t.example/x", None)
    with pytest.raises(NoProvider, match=r"unknown connector kind 'nosuch'.*connection\.token_url"):
        provider_for("nosuch")
