"""A pooled PostgreSQL connection the server dropped (a restart, a terminated backend) is
discarded by SQLAlchemy's pool when it comes back, and the next checkout opens a new one.
The pool logs that at error level with a traceback; a worker's JSON log said so on every
restart, for nothing that failed. arsync's log carries one warning line saying why."""

from __future__ import annotations

import io
import json

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from store.db import make_engine
from sync.logging import configure_logging


def test_a_dropped_pooled_connection_is_one_warning_line_and_the_pool_goes_on(pg_url):
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    engine = make_engine(pg_url)
    admin = create_engine(pg_url, poolclass=NullPool)
    try:
        raw = engine.raw_connection()  # in a transaction, as a connection handed back mid-work is
        cursor = raw.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
        with admin.begin() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        raw.close()  # back to the pool: its rollback fails on the dropped connection

        with engine.connect() as connection:  # the pool opened a new one
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
        admin.dispose()

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1, lines
    [line] = lines
    assert line["level"] == "warning"
    assert line["event"].startswith("store connection lost; the pool opens a new one (")
    assert "terminating connection" in line["event"]
    assert "exception" not in line and "Traceback" not in stream.getvalue()
