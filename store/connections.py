"""A company's connection to its accounting system: the one place its status is written.

The status an admin sees in `arsync status` comes from here, whether a token refresh was
refused, a daily call limit was reached, or new tokens were stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, Engine, select, update

from store.tables import CompanyConnection

CONNECTIONS = CompanyConnection.__table__


class ConnectionStatus(StrEnum):
    NOT_CONNECTED = "not_connected"
    OK = "ok"
    RECONNECT_NEEDED = "reconnect_needed"  # the refresh token was refused: an admin reconnects
    RATE_LIMITED = "rate_limited"  # the daily call limit is spent until `blocked_until`


def _set(connection: Connection, company_id: str, **values: object) -> None:
    connection.execute(update(CONNECTIONS).where(CONNECTIONS.c.company_id == company_id).values(**values))


def store_tokens(connection: Connection, company_id: str, sealed: dict[str, object]) -> None:
    """New (sealed) tokens make the connection healthy again."""
    _set(connection, company_id, **sealed, status=ConnectionStatus.OK, status_detail=None)


ANY = object()  # `mark_reconnect_needed` whatever refresh token is stored


def mark_reconnect_needed(
    connection: Connection, company_id: str, reason: str, *, while_stored: object = ANY
) -> None:
    """Mark the connection "reconnect needed"; with `while_stored` (a sealed refresh token, or
    None for none), only while that is still what is stored: tokens an admin stored while a
    sync was failing on the old ones (or on none) stay usable."""
    where = [CONNECTIONS.c.company_id == company_id]
    if while_stored is not ANY:
        where.append(CONNECTIONS.c.refresh_token.is_not_distinct_from(while_stored))
    connection.execute(
        update(CONNECTIONS)
        .where(*where)
        .values(status=ConnectionStatus.RECONNECT_NEEDED, status_detail=reason, blocked_until=None)
    )


def mark_rate_limited(connection: Connection, company_id: str, reason: str, until: datetime) -> None:
    _set(
        connection,
        company_id,
        status=ConnectionStatus.RATE_LIMITED,
        status_detail=reason,
        blocked_until=until,
    )


def clear_rate_limit(connection: Connection, company_id: str) -> None:
    """A sync that succeeded shows the daily-limit block is over."""
    connection.execute(
        update(CONNECTIONS)
        .where(CONNECTIONS.c.company_id == company_id, CONNECTIONS.c.status == ConnectionStatus.RATE_LIMITED)
        .values(status=ConnectionStatus.OK, status_detail=None, blocked_until=None)
    )


def why_blocked(engine: Engine, company_id: str, now: datetime) -> str | None:
    """Why a sync of the company may not start now, or None.

    A refused refresh token stays refused: presenting it again on every scheduled or
    webhook-triggered sync would only ask the provider the same question, so syncs stop
    until an admin stores new tokens (`store_tokens` sets the status back to ok). A spent
    daily limit blocks until `blocked_until`.
    """
    with engine.connect() as connection:
        row = connection.execute(
            select(CONNECTIONS.c.status, CONNECTIONS.c.status_detail, CONNECTIONS.c.blocked_until).where(
                CONNECTIONS.c.company_id == company_id
            )
        ).first()
    if row is None:
        return None
    status, detail, until = row
    if status == ConnectionStatus.RECONNECT_NEEDED:
        told = detail is not None and "arsync auth" in detail  # "no tokens stored: run ..."
        how = "" if told else f": run `arsync auth connect {company_id}` (or `arsync auth set-tokens`)"
        return f"reconnect needed ({detail}){how}; syncs resume once new tokens are stored"
    if until is not None and until > now:
        return f"daily API limit reached; resumes at {until.isoformat()}"
    return None
