"""The `CredentialsStore` connectors receive: encrypted tokens in `connections`, a DB lease as lock."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from connectors.base import Tokens
from store.crypto import SecretBox
from store.leases import lease
from store.tables import Connection
from sync.logging import REDACTOR


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class DbCredentials:
    """Tokens of one company's connection, sealed with `box`, committed on every save."""

    def __init__(self, engine: Engine, company_id: str, box: SecretBox, *, lock_wait: float = 60.0) -> None:
        self.engine = engine
        self.company_id = company_id
        self.box = box
        self.owner = worker_id()
        self.lock_wait = lock_wait

    def load(self) -> Tokens | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(select(Connection).where(Connection.company_id == self.company_id))
                .mappings()
                .first()
            )
        if row is None or not row["access_token"] or not row["refresh_token"]:
            return None
        tokens = Tokens(
            access_token=self.box.open(row["access_token"]),
            refresh_token=self.box.open(row["refresh_token"]),
            access_expires_at=row["access_expires_at"],
            refresh_expires_at=row["refresh_expires_at"],
        )
        REDACTOR.remember(tokens.access_token, tokens.refresh_token)  # masked wherever they appear in logs
        return tokens

    def save(self, tokens: Tokens) -> None:
        REDACTOR.remember(tokens.access_token, tokens.refresh_token)
        values = {
            "access_token": self.box.seal(tokens.access_token),
            "refresh_token": self.box.seal(tokens.refresh_token),
            "access_expires_at": tokens.access_expires_at,
            "refresh_expires_at": tokens.refresh_expires_at,
            "refreshed_at": datetime.now(UTC),
            "status": "ok",
            "status_detail": None,
        }
        with self.engine.begin() as connection:
            connection.execute(
                update(Connection).where(Connection.company_id == self.company_id).values(**values)
            )

    @contextmanager
    def refresh_lock(self) -> Iterator[None]:
        with lease(
            self.engine,
            f"refresh:{self.company_id}",
            self.owner,
            ttl=timedelta(minutes=2),
            wait=self.lock_wait,
        ):
            yield

    def mark_reconnect_needed(self, reason: str) -> None:
        self.set_status("reconnect_needed", reason)

    def set_status(self, status: str, detail: str | None, blocked_until: datetime | None = None) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(Connection)
                .where(Connection.company_id == self.company_id)
                .values(status=status, status_detail=detail, blocked_until=blocked_until)
            )
