"""What every request handler needs, built once per application and reached through `Depends`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from sync.companies import effective_companies
from sync.config import CompanyConfig, Config


@dataclass(frozen=True)
class WebhookSecrets:
    """The verifier token (QuickBooks) and webhook key (Xero); empty: that webhook is off."""

    quickbooks: str = ""
    xero: str = ""


@dataclass
class ServerContext:
    config: Config
    engine: Engine
    clock: Callable[[], datetime]
    registry: CollectorRegistry
    secrets: WebhookSecrets

    def companies(self) -> list[CompanyConfig]:
        """The file's companies and those added with `arsync company add` (read afresh)."""
        return effective_companies(self.config, self.engine)

    def company(self, company_id: str) -> CompanyConfig | None:
        """The company with this id, or None."""
        return next((c for c in self.companies() if c.id == company_id), None)

    def today(self, company: CompanyConfig) -> date:
        """The company's local date now: "past due" and aging are decided in its time zone."""
        return self.clock().astimezone(ZoneInfo(company.timezone)).date()


async def server_context(request: Request) -> ServerContext:
    """FastAPI dependency: the application's context (async: no thread hop for a lookup)."""
    return request.app.state.context
