"""Sealing every stored token with the current key: how a key is rotated without a reconnect.

The operator starts every arsync process with the new ARSYNC_SECRET_KEY and the old one in
ARSYNC_SECRET_KEY_PREVIOUS (they read both, and seal with the new one), runs `arsync auth
rekey`, and can then drop the previous key. A worker may refresh a company's tokens while this
runs: each company's tokens are replaced only if they are still the ones read (compare and
set), else read again, so a refresh token rotated meanwhile is never written over with the
one it replaced (QuickBooks and Xero would refuse that one: a reconnect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Engine, select, update

from store.connections import CONNECTIONS
from store.crypto import SecretBox, SecretKeyError

TOKENS = ("access_token", "refresh_token")
ATTEMPTS = 5  # reads per company: a refresh between the read and the write makes one more


class Outcome(StrEnum):
    RESEALED = "resealed"
    CURRENT = "current"  # already sealed with the current key
    UNREADABLE = "unreadable"
    BUSY = "busy"  # changed under every attempt


@dataclass
class Rekeyed:
    """Per outcome, the companies it came to; `why`: each unreadable or busy company's reason."""

    companies: dict[Outcome, list[str]] = field(default_factory=lambda: {o: [] for o in Outcome})
    why: dict[str, str] = field(default_factory=dict)


def reseal_all(engine: Engine, box: SecretBox, *, dry_run: bool = False) -> Rekeyed:
    """Seal every company's stored tokens with `box`'s current key (`dry_run`: only say which
    would be). Tokens no key of `box` opens are left as they are, with why."""
    if not box.encrypting:
        raise ValueError("no ARSYNC_SECRET_KEY: there is no key to seal with")
    done = Rekeyed()
    with engine.connect() as connection:
        companies = list(
            connection.scalars(
                select(CONNECTIONS.c.company_id)
                .where(CONNECTIONS.c.access_token.is_not(None) | CONNECTIONS.c.refresh_token.is_not(None))
                .order_by(CONNECTIONS.c.company_id)
            )
        )
    for company_id in companies:
        outcome, why = _reseal(engine, box, company_id, dry_run)
        done.companies[outcome].append(company_id)
        if why:
            done.why[company_id] = why
    return done


def _reseal(engine: Engine, box: SecretBox, company_id: str, dry_run: bool) -> tuple[Outcome, str | None]:
    for _ in range(ATTEMPTS):
        with engine.connect() as connection:
            row = connection.execute(
                select(*(CONNECTIONS.c[name] for name in TOKENS)).where(
                    CONNECTIONS.c.company_id == company_id
                )
            ).one()
        stored = {name: row._mapping[name] for name in TOKENS if row._mapping[name]}
        if all(box.sealed_with_current(value) for value in stored.values()):
            return Outcome.CURRENT, None
        try:
            opened = {name: box.open(value) for name, value in stored.items()}
        except SecretKeyError as exc:
            return Outcome.UNREADABLE, str(exc)
        if dry_run:
            return Outcome.RESEALED, None
        unchanged = [CONNECTIONS.c[name].is_not_distinct_from(row._mapping[name]) for name in TOKENS]
        with engine.begin() as connection:
            written = connection.execute(
                update(CONNECTIONS)
                .where(CONNECTIONS.c.company_id == company_id, *unchanged)
                .values({name: box.seal(value) for name, value in opened.items()})
            ).rowcount
        if written:
            return Outcome.RESEALED, None
    return Outcome.BUSY, f"its tokens changed under each of {ATTEMPTS} attempts (refreshed meanwhile)"
