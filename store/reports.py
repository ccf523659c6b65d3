"""Read-only summaries for `arsync status` and `arsync history`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from store.tables import Connection, Outbox, SyncRun


def sync_runs(engine: Engine, company_id: str | None = None, limit: int = 50) -> list[dict]:
    """The newest sync runs first, as plain dicts."""
    query = select(SyncRun).order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)
    if company_id:
        query = query.where(SyncRun.company_id == company_id)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [dict(row) for row in rows]


def last_run(engine: Engine, company_id: str) -> dict | None:
    runs = sync_runs(engine, company_id, limit=1)
    return runs[0] if runs else None


def last_success(engine: Engine, company_id: str) -> datetime | None:
    query = select(func.max(SyncRun.finished_at)).where(
        SyncRun.company_id == company_id, SyncRun.status == "ok"
    )
    with engine.connect() as connection:
        return connection.scalar(query)


def connection_health(engine: Engine, company_id: str) -> dict:
    with engine.connect() as connection:
        row = (
            connection.execute(select(Connection).where(Connection.company_id == company_id))
            .mappings()
            .first()
        )
    if row is None:
        return {"status": "not_connected", "detail": None, "blocked_until": None}
    return {
        "status": row["status"],
        "detail": row["status_detail"],
        "blocked_until": row["blocked_until"],
        "access_expires_at": row["access_expires_at"],
        "refreshed_at": row["refreshed_at"],
    }


def outbox_counts(engine: Engine, company_id: str) -> dict[str, int]:
    query = select(Outbox.status, func.count()).where(Outbox.company_id == company_id).group_by(Outbox.status)
    with engine.connect() as connection:
        return {status: count for status, count in connection.execute(query)}


def in_doubt(engine: Engine, company_id: str) -> list[dict]:
    query = select(Outbox.id, Outbox.recipient, Outbox.subject, Outbox.claimed_at).where(
        Outbox.company_id == company_id, Outbox.status == "in_doubt"
    )
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
