"""Build a company's connector from the configuration and run one sync of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from connectors.registry import UnknownConnector, create_connector
from store.crypto import SecretBox
from sync.config import CompanyConfig
from sync.credentials import DbCredentials
from sync.orchestrator import SyncSummary, sync_company
from sync.settings import company_policy, connector_settings

Clock = Callable[[], datetime]


def sync_one(
    engine: Engine,
    box: SecretBox,
    company: CompanyConfig,
    *,
    owner: str,
    full: bool = False,
    clock: Clock = lambda: datetime.now(UTC),
    options: dict | None = None,
    on_page: Callable[[SyncSummary], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SyncSummary:
    """One sync of `company`: a failure of any kind ends up in the returned summary."""
    credentials = DbCredentials(engine, company.id, box)
    try:
        connector = create_connector(connector_settings(company, clock=clock, options=options), credentials)
    except UnknownConnector as exc:
        return SyncSummary(company=company.id, status="failed", full=full, error=str(exc))
    return sync_company(
        engine,
        company.id,
        company_policy(company),
        connector,
        full=full,
        owner=owner,
        clock=clock,
        on_page=on_page,
        stop=stop,
    )
