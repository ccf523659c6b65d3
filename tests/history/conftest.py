"""One migrated store per module and backend; each test works in a company of its own.

Migrating a fresh schema per test cost more than the tests themselves; company scoping
(which every query must honour anyway) keeps the tests apart.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from store.db import make_engine, upgrade
from tests.conftest import PG_BASE


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_engine(request, tmp_path_factory, pg_available) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('history') / 'arsync.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    if not pg_available:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required in CI but 127.0.0.1:5432/test is unreachable")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{PG_BASE}?options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def cid() -> str:
    """A company id of this test's own."""
    return f"c{uuid.uuid4().hex[:10]}"
