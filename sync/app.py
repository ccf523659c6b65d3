"""The application context the CLI and the daemon build once: config, engine, secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from store.companies import CompanyRow, register_companies
from store.crypto import SecretBox
from store.db import make_engine, require_migrated
from store.schedule import ensure_scheduled
from sync.companies import effective_companies
from sync.config import CompanyConfig, Config, ConfigError

SECRET_KEY_ENV = "ARSYNC_SECRET_KEY"


@dataclass
class App:
    config: Config
    engine: Engine
    box: SecretBox

    @classmethod
    def open(cls, config: Config, *, migrated: bool = True) -> App:
        """Connect to the configured store; with `migrated`, refuse an unmigrated schema."""
        engine = make_engine(config.store.url)
        app = cls(config=config, engine=engine, box=SecretBox(os.environ.get(SECRET_KEY_ENV)))
        if migrated:
            require_migrated(engine)
            register_companies(engine, company_rows(config.companies))
            ensure_scheduled(engine, [c.id for c in config.companies], now=datetime.now(UTC))
        return app

    def company_rows(self) -> list[CompanyRow]:
        return company_rows(self.config.companies)

    def companies(self) -> list[CompanyConfig]:
        """The effective companies: the file's and the store's (read afresh on every call)."""
        return effective_companies(self.config, self.engine)

    def company(self, company_id: str) -> CompanyConfig:
        for company in self.companies():
            if company.id == company_id:
                return company
        raise ConfigError(f"{self.config.path or 'configuration'}: no company with id {company_id!r}")

    def close(self) -> None:
        self.engine.dispose()


def company_rows(companies: list[CompanyConfig]) -> list[CompanyRow]:
    return [CompanyRow(c.id, c.name, c.timezone, c.connection.kind) for c in companies]
