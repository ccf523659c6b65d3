"""Translations from the validated configuration to what each layer takes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from connectors.oauth import TokenEndpoint
from connectors.ratelimit import PacingFactory
from connectors.registry import ConnectorSettings, token_endpoint
from portal_rules.types import CompanyPolicy, Plan
from sync.config import CompanyConfig


def company_policy(company: CompanyConfig) -> CompanyPolicy:
    return CompanyPolicy(
        plan=Plan(company.plan),
        timezone=company.timezone,
        import_inactive_customers=company.import_inactive_customers,
        multi_account_portal=company.multi_account_portal,
        auto_invite=company.auto_invite,
        invitation_ttl_days=company.invitation_ttl_days,
        reminder_offsets_days=tuple(company.reminder_offsets_days),
        delivery_days=frozenset(company.delivery_days),
        delivery_from_hour=company.delivery_from_hour,
        delivery_to_hour=company.delivery_to_hour,
    )


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def connector_settings(
    company: CompanyConfig,
    *,
    clock: Callable[[], datetime] | None = None,
    options: dict | None = None,
    pacing: PacingFactory | None = None,
    stop: Callable[[], bool] | None = None,
) -> ConnectorSettings:
    connection = company.connection
    return ConnectorSettings(
        company_id=company.id,
        kind=connection.kind,
        environment=connection.environment,
        realm_id=connection.realm_id,
        tenant_id=connection.tenant_id,
        client_id=connection.client_id,
        client_secret=connection.client_secret(),
        api_base_url=connection.api_base_url,
        token_url=connection.token_url,
        import_inactive_customers=company.import_inactive_customers,
        options=options or {},
        clock=clock,
        token_clock=_wall_clock,  # tokens expire in real time, whatever `--now` says
        pacing=pacing,
        stop=stop,
    )


def token_endpoint_for(company: CompanyConfig) -> TokenEndpoint:
    """The OAuth token endpoint of the company's connection (its `token_url` override applied)."""
    connection = company.connection
    return token_endpoint(
        connection.kind,
        client_id=connection.client_id,
        client_secret=connection.client_secret(),
        token_url=connection.token_url,
    )


def books_of(company: CompanyConfig) -> str:
    """Whose books the company's connection reads, as the store keeps it beside the rows
    synced from them ("quickbooks realm 9130...", "xero tenant ..."; a plug-in: its kind and
    whichever id it is given)."""
    connection = company.connection
    if connection.realm_id and connection.kind != "xero":
        return f"{connection.kind} realm {connection.realm_id}"
    if connection.tenant_id:
        return f"{connection.kind} tenant {connection.tenant_id}"
    return connection.kind
