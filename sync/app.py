"""The application context the CLI and the daemon build once: config, engine, secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine

from store.companies import CompanyRow, register_companies
from store.crypto import SecretBox
from store.db import make_engine, require_migrated
from sync.config import Config

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
            register_companies(engine, app.company_rows())
        return app

    def company_rows(self) -> list[CompanyRow]:
        return [CompanyRow(c.id, c.name, c.timezone, c.connection.kind) for c in self.config.companies]

    def close(self) -> None:
        self.engine.dispose()
