"""Shared fixtures: a migrated store on SQLite and on PostgreSQL.

PostgreSQL tests use the local service (127.0.0.1:5432, database `test`, trust auth) and
get a schema of their own per test, so runs never see each other's rows. With CI=true a
missing PostgreSQL is a failure, not a skip (see also .ci/run).

The suite runs in parallel processes (pytest-xdist, `addopts` in pyproject.toml). A test
marked `restarts_postgres` restarts the shared service, and one marked `timed` holds arsync
to a bar of a second or two (an answer within the second, a wait that ends at once) that
the other processes' tests would eat into on a two-core machine: both run alone. Every test
holds a shared lock for its whole run (module fixtures included), those an exclusive lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from store.db import make_engine, sqlite_file, upgrade

PG_BASE = os.environ.get("ARSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# CI must not turn red on a counterexample drawn by chance for an unrelated change: there the
# property tests replay a fixed sequence; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


ALONE = ("restarts_postgres", "timed")  # markers of the tests that run while no other test runs
_LOCKS = Path(tempfile.gettempdir()) / f"arsync-tests-{os.getuid()}"


@contextmanager
def _postgres_turn(exclusive: bool) -> Iterator[None]:
    """A readers-writer lock across the test processes of this machine (not only this run's:
    a restart would break any of them). The turnstile lets a waiting writer in before readers
    that come after it, so the restart cannot be starved by the other process's next tests."""
    _LOCKS.mkdir(exist_ok=True)
    with open(_LOCKS / "postgres.turn", "a") as turn, open(_LOCKS / "postgres.lock", "a") as lock:
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)
        yield  # closing the file releases the lock


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    alone = any(item.get_closest_marker(name) for name in ALONE)
    with _postgres_turn(exclusive=alone):
        return (yield)


@pytest.fixture(autouse=True)
def _no_handler_left_on_a_closed_stream() -> Iterator[None]:
    """`main()` run in-process points the root logger at this test's captured stderr, which
    pytest closes after the test; a thread of a later test (an SMTP server's) logging there
    printed "--- Logging error ---" into the run's output. The plain stream handlers the test
    added (arsync's; pytest's own are subclasses) go with it."""
    before = set(logging.getLogger().handlers)
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in before and type(handler) is logging.StreamHandler:
            root.removeHandler(handler)


def _pg_available() -> bool:
    try:
        with create_engine(PG_BASE).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_available()


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not pg_available:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required in CI but 127.0.0.1:5432/test is unreachable")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)  # survives a restart
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'arsync.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request) -> str:
    """Each test using this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def _migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated once per test process, for `engine` to copy."""
    path = tmp_path_factory.mktemp("migrated") / "arsync.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()  # the last connection closed: WAL checkpointed, the file is the whole store
    return path


@pytest.fixture
def engine(store_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated engine on each backend. On SQLite a copy of a store migrated once: the same
    file `upgrade` would write, without running the migrations for each of ~150 tests."""
    eng = make_engine(store_url)  # creates the file, private (0600), as for a real store
    if store_url.startswith("sqlite"):
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite_file"), sqlite_file(store_url))
    else:
        upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    eng = make_engine(pg_url)
    upgrade(eng)
    yield eng
    eng.dispose()
