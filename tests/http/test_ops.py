"""Health, readiness, metrics and the OpenAPI document: no key needed."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sync.config import ConfigError, load_config
from sync.http.app import create_app
from tests.http.conftest import Served, run_cli, serving_in_thread

ROUTES = {
    "/v1/companies/{company}/accounts",
    "/v1/companies/{company}/customers/{ref}/invoices",
    "/v1/companies/{company}/customers/{ref}/balance",
    "/v1/companies/{company}/customers/{ref}/payments",
    "/v1/companies/{company}/customers/{ref}/credits",
    "/v1/companies/{company}/customers/{ref}/statement",
    "/v1/companies/{company}/request-access",
    "/v1/companies/{company}/invitations/accept",
    "/webhooks/quickbooks",
    "/webhooks/xero",
    "/healthz",
    "/readyz",
    "/metrics",
}


def test_health_readiness_and_openapi_need_no_key(served: Served):
    with served.client() as client:
        health = client.get("/healthz")
        ready = client.get("/readyz")
        document = client.get("/openapi.json")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert document.status_code == 200
    assert set(document.json()["paths"]) >= ROUTES
    assert "HTTPBearer" in document.json()["components"]["securitySchemes"]


def test_metrics_count_per_company_from_the_store(served: Served):
    with served.client() as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(answer.text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    types = {family.name: family.type for family in families}
    counters = ("arsync_syncs", "arsync_api_calls", "arsync_quarantined_records")
    assert [types[name] for name in counters] == ["counter"] * 3
    assert types["arsync_outbox_messages"] == types["arsync_mail_in_doubt"] == "gauge"
    # Prometheus keeps `_total` for counters: no gauge sample may carry it.
    assert not [s.name for f in families if f.type == "gauge" for s in f.samples if s.name.endswith("_total")]
    for company in ("qbo", "qbo_single", "qbo_all", "xero"):
        assert samples[("arsync_syncs_total", (("company", company), ("status", "ok")))] >= 1
        assert samples[("arsync_api_calls_total", (("company", company),))] >= 1
        assert ("arsync_quarantined_records_total", (("company", company),)) in samples
        assert samples[("arsync_mail_in_doubt", (("company", company),))] == 0
        assert ("arsync_outbox_messages", (("company", company), ("state", "queued"))) in samples
    assert samples[("arsync_syncs_total", (("company", "qbo"), ("status", "failed")))] == 0


def test_readiness_fails_on_an_unmigrated_store(tmp_path: Path):
    """Served in this process by uvicorn on loopback: the store file exists but has no schema."""
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n')
    app = create_app(config=load_config(config))
    with serving_in_thread(app) as base:
        ready = httpx.get(f"{base}/readyz")
        health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200
    assert ready.status_code == 503
    assert "arsync db upgrade" in ready.json()["error"]


def test_the_importable_app_needs_webhook_keys_but_no_client_or_smtp_secret(tmp_path: Path, monkeypatch):
    """`uvicorn --factory sync.http.app:create_app` reads the file as `arsync serve` does."""
    for env in ("NO_CLIENT_SECRET_HERE", "NO_SMTP_PASSWORD_HERE", "SOME_XERO_KEY"):
        monkeypatch.delenv(env, raising=False)
    config = tmp_path / "arsync.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "a.db"}"\n'
        '[mail]\ntransport = "smtp"\nsmtp_username = "arsync"\nsmtp_password_env = "NO_SMTP_PASSWORD_HERE"\n'
        '[http]\nxero_webhook_key_env = "SOME_XERO_KEY"\n'
        '[[companies]]\nid = "acme"\nname = "Acme"\ntimezone = "UTC"\nportal_url = "https://portal.example"\n'
        '[companies.connection]\nkind = "xero"\ntenant_id = "t-1"\nclient_id = "c"\n'
        'client_secret_env = "NO_CLIENT_SECRET_HERE"\n'
    )
    with pytest.raises(ConfigError, match="http.xero_webhook_key_env: environment variable SOME_XERO_KEY"):
        create_app(config)
    monkeypatch.setenv("SOME_XERO_KEY", "k")
    app = create_app(config)
    assert [c.id for c in app.state.context.config.companies] == ["acme"]


def test_serve_configuration_errors_exit_2_naming_the_key(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_WEBHOOK_KEY", raising=False)
    config = tmp_path / "arsync.toml"
    config.write_text('[http]\nxero_webhook_key_env = "NO_SUCH_WEBHOOK_KEY"\n')
    code, _, err = run_cli(config, "serve")
    assert code == 2
    assert "http.xero_webhook_key_env" in err and "NO_SUCH_WEBHOOK_KEY" in err
    config.write_text("[http]\nport = 70000\n")
    code, _, err = run_cli(config, "serve")
    assert code == 2 and "http.port" in err
    config.write_text('[http]\nlisten = "0.0.0.0"\n')
    code, _, err = run_cli(config, "serve")
    assert code == 2 and "http.listen: unknown key" in err


def test_serve_on_a_taken_port_is_one_line_and_exit_1(tmp_path: Path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    config = tmp_path / "arsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "a.db"}"\n')
    try:
        code, _, err = run_cli(config, "serve", "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert code == 1
    assert "cannot listen on 127.0.0.1:" in err and "Traceback" not in err
