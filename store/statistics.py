"""The query planner's statistics, refreshed once a full pull has filled the tables.

SQLite keeps no statistics unless asked (`ANALYZE`). Without them it takes any index on
`company_id` for selective, so with one company the health tally after a 100k pull looked
every invoice up through `(company_id, customer_ref)` instead of scanning the table: about
1 s where 0.5 s do. A sampled ANALYZE (`analysis_limit`) does not help here: its sample of
an index's first entries makes one company look selective again. A whole one costs about
0.1 s per 100k invoices, so it runs only when the invoices have no statistics yet or their
count has halved or doubled since: a store's statistics are refreshed a few times as it
grows, not after every full pull. PostgreSQL's autovacuum analyzes tables as they change.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine

# How far the invoices' count may drift from the one analyzed before the statistics are redone.
_DRIFT = 2


def refresh_statistics(engine: Engine) -> bool:
    """Analyze the store's tables if their statistics are missing or stale (SQLite; nothing to
    do on PostgreSQL). Whether it analyzed."""
    if engine.dialect.name != "sqlite":
        return False
    with engine.begin() as connection:
        rows = connection.exec_driver_sql("SELECT count(*) FROM invoices").scalar_one()
        known = _analyzed_rows(connection)
        if known is not None and known / _DRIFT <= rows <= known * _DRIFT:
            return False
        connection.exec_driver_sql("ANALYZE")
    return True


def _analyzed_rows(connection: Connection) -> int | None:
    """The invoices' row count when they were last analyzed, if they were."""
    exists = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if exists is None:
        return None
    stat = connection.exec_driver_sql(
        "SELECT stat FROM sqlite_stat1 WHERE tbl = 'invoices' LIMIT 1"  # every index's stat starts with it
    ).scalar()
    return int(stat.split()[0]) if stat else None
