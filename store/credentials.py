"""The `CredentialsStore` connectors receive: encrypted tokens in `connections`, a DB lease as lock.

`remember` is told every token read or written, so the caller's log redactor can mask it;
the store itself knows nothing of logging.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from connectors.base import Tokens, TokensUnreadable
from store.connections import ANY, CONNECTIONS, mark_reconnect_needed, store_tokens
from store.crypto import SecretBox, SecretKeyError, unreadable_tokens
from store.leases import abandoned, lease
from store.owners import worker_id

REFRESHING = "refresh:"  # the lease a company's token refresh holds: "refresh:<company>"


def refresh_lease(company_id: str) -> str:
    return f"{REFRESHING}{company_id}"


def cut_off_refreshes(engine: Engine) -> set[str]:
    """Companies whose token refresh was cut off: its process died (or lost the store) before
    releasing the refresh lease, perhaps after the provider had rotated the refresh token and
    before the new one was saved. Xero still answers the old one, with the same new pair, for
    30 minutes: a refresh now recovers the connection that a refresh at the next sync loses."""
    return {name.removeprefix(REFRESHING) for name in abandoned(engine, REFRESHING)}


def _forget(*_values: str) -> None:
    pass


class StoredTokensUnreadable(TokensUnreadable, SecretKeyError):
    """A company's stored tokens sealed with another key (or none set): what to do, named."""

    def __init__(self, company_id: str, why: SecretKeyError) -> None:
        super().__init__(unreadable_tokens(company_id, why))


class DbCredentials:
    """Tokens of one company's connection, sealed with `box`, committed on every save."""

    def __init__(
        self,
        engine: Engine,
        company_id: str,
        box: SecretBox,
        *,
        remember: Callable[..., None] = _forget,
        lock_wait: float = 60.0,
    ) -> None:
        self.engine = engine
        self.remember = remember
        self.company_id = company_id
        self.box = box
        self.owner = worker_id()
        self.lock_wait = lock_wait
        self._seen: object = ANY  # the sealed refresh token last loaded or saved (None: none)

    def load(self) -> Tokens | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(select(CONNECTIONS).where(CONNECTIONS.c.company_id == self.company_id))
                .mappings()
                .first()
            )
        self._seen = row["refresh_token"] if row is not None else None
        if row is None or not row["access_token"] or not row["refresh_token"]:
            return None
        try:
            tokens = Tokens(
                access_token=self.box.open(row["access_token"]),
                refresh_token=self.box.open(row["refresh_token"]),
                access_expires_at=row["access_expires_at"],
                refresh_expires_at=row["refresh_expires_at"],
            )
        except SecretKeyError as exc:
            raise StoredTokensUnreadable(self.company_id, exc) from None
        self.remember(tokens.access_token, tokens.refresh_token)
        return tokens

    def save(self, tokens: Tokens) -> None:
        self.remember(tokens.access_token, tokens.refresh_token)
        sealed = {
            "access_token": self.box.seal(tokens.access_token),
            "refresh_token": self.box.seal(tokens.refresh_token),
            "access_expires_at": tokens.access_expires_at,
            "refresh_expires_at": tokens.refresh_expires_at,
            "refreshed_at": datetime.now(UTC),
        }
        with self.engine.begin() as connection:
            store_tokens(connection, self.company_id, sealed)
        self._seen = sealed["refresh_token"]

    @contextmanager
    def refresh_lock(self) -> Iterator[None]:
        with lease(
            self.engine,
            refresh_lease(self.company_id),
            self.owner,
            ttl=timedelta(minutes=2),
            wait=self.lock_wait,
        ):
            yield

    def mark_reconnect_needed(self, reason: str) -> None:
        """Only while the refresh token last loaded is still the stored one (see the protocol)."""
        with self.engine.begin() as connection:
            mark_reconnect_needed(connection, self.company_id, reason, while_stored=self._seen)
