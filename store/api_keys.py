"""Portal-API keys: created at random, shown once, kept only as a hash, checked in constant time.

A key reads `ak_<key_id>_<secret>`. The key id is public (it names the key in `list` and
`revoke`, and finds its row); the whole key's SHA-256 is what is stored and compared. The
secret has 256 random bits, so a plain (fast) hash is enough: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, update

from store.tables import ApiKey

API_KEYS = ApiKey.__table__
PREFIX = "ak_"
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What `arsync portal api-key list` shows: never the key itself."""

    key_id: str
    created_at: datetime


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(engine: Engine, company_id: str, *, now: datetime) -> tuple[str, str]:
    """A new key for `company_id`: returns (key_id, key). The key is not kept anywhere."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with engine.begin() as connection:
        connection.execute(
            insert(API_KEYS).values(company_id=company_id, key_id=key_id, key_hash=_hash(key), created_at=now)
        )
    return key_id, key


def list_keys(engine: Engine, company_id: str) -> list[KeyInfo]:
    """The company's live (unrevoked) keys, oldest first."""
    query = (
        select(API_KEYS.c.key_id, API_KEYS.c.created_at)
        .where(API_KEYS.c.company_id == company_id, API_KEYS.c.revoked_at.is_(None))
        .order_by(API_KEYS.c.created_at, API_KEYS.c.id)
    )
    with engine.connect() as connection:
        return [KeyInfo(row.key_id, row.created_at) for row in connection.execute(query)]


def revoke_key(engine: Engine, company_id: str, key_id: str, *, now: datetime) -> bool:
    """Revoke one of the company's live keys; False when it has no such key."""
    with engine.begin() as connection:
        result = connection.execute(
            update(API_KEYS)
            .where(
                API_KEYS.c.company_id == company_id,
                API_KEYS.c.key_id == key_id,
                API_KEYS.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
    return result.rowcount == 1


def revoke_all_keys(connection: Connection, company_id: str, *, now: datetime) -> int:
    """Revoke every live key of the company (it is removed); how many, in the caller's transaction."""
    result = connection.execute(
        update(API_KEYS)
        .where(API_KEYS.c.company_id == company_id, API_KEYS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount


def company_for_key(engine: Engine, key: str) -> str | None:
    """The company a presented key belongs to, or None for a malformed, unknown or revoked key."""
    key_id, _, secret = key.removeprefix(PREFIX).partition("_")
    row = None
    if key.startswith(PREFIX) and key_id and secret:
        with engine.connect() as connection:
            row = connection.execute(
                select(API_KEYS.c.company_id, API_KEYS.c.key_hash).where(
                    API_KEYS.c.key_id == key_id, API_KEYS.c.revoked_at.is_(None)
                )
            ).first()
    # Compare even when there is no row, so a wrong key id costs what a wrong secret does.
    matches = hmac.compare_digest(_hash(key), row.key_hash if row else _DUMMY_HASH)
    return row.company_id if row is not None and matches else None
