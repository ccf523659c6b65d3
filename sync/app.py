"""The application context the CLI and the daemon build once: config, engine, secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from store.crypto import SecretBox
from store.db import make_engine, require_existing, require_migrated
from sync.companies import effective_companies
from sync.config import CompanyConfig, Config, ConfigError

if TYPE_CHECKING:
    from store.companies import CompanyRow

SECRET_KEY_ENV = "ARSYNC_SECRET_KEY"
PREVIOUS_KEYS_ENV = "ARSYNC_SECRET_KEY_PREVIOUS"  # earlier keys, comma-separated: read, never written


def secret_box() -> SecretBox:
    """The box this process seals and opens tokens with, from its environment."""
    previous = os.environ.get(PREVIOUS_KEYS_ENV, "")
    return SecretBox(os.environ.get(SECRET_KEY_ENV), [k.strip() for k in previous.split(",") if k.strip()])


@dataclass
class App:
    config: Config
    engine: Engine
    box: SecretBox

    @classmethod
    def open(cls, config: Config, *, migrated: bool = True, register: bool = True) -> App:
        """Connect to the configured store; with `migrated`, refuse an unmigrated schema.

        With `register` (every command that may write), the file's companies are registered
        and scheduled; a read-only command leaves that to the next one that writes.
        """
        if migrated and not register:
            require_existing(config.store.url)
        engine = make_engine(config.store.url)
        _connect_once(engine, config.store.url)
        app = cls(config=config, engine=engine, box=secret_box())
        if migrated:
            require_migrated(engine)
        if migrated and register:
            from store.companies import register_companies
            from store.schedule import ensure_scheduled

            register_companies(engine, company_rows(config.companies))
            ensure_scheduled(engine, [c.id for c in config.companies], now=datetime.now(UTC))
        return app

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


def _connect_once(engine: Engine, url: str) -> None:
    """Connect before any work, so a store.url no database can be at (a missing folder, a
    folder, another file) is a configuration error naming the file, whichever command ran."""
    from sqlalchemy.exc import DBAPIError

    from sync.cli import unopenable_store

    try:
        engine.connect().close()
    except DBAPIError as exc:
        problem = unopenable_store(url, exc)
        if problem is None:
            raise
        raise problem from None


def company_rows(companies: list[CompanyConfig]) -> list[CompanyRow]:
    from store.companies import CompanyRow

    return [CompanyRow(c.id, c.name, c.timezone, c.connection.kind) for c in companies]
