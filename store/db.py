"""Engine and session setup, and the "is this database migrated?" check."""

from __future__ import annotations

import math
import os
import re
from contextlib import suppress
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text

MIGRATIONS = Path(__file__).parent / "migrations"
# `revision = "0001"` / `down_revision: str | None = None` at the top of a migration file
_ASSIGNED_REVISION = re.compile(
    r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(None|\"[^\"\n]*\"|'[^'\n]*')\s*$", re.MULTILINE
)


class StoreNotMigrated(Exception):
    """The database schema is missing or behind the code."""


def make_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 5,
    busy_timeout: float = 30.0,
    bounded: bool = False,
    statement_timeout: float | None = None,
    create: bool = True,
) -> Engine:
    """An engine for `url`: SQLite in WAL mode with a busy timeout, or PostgreSQL via psycopg.

    `pool_size` connections are kept open; more at once are opened and closed each time, so
    a process with more threads using the store than that (`arsync serve`) asks for more.
    `busy_timeout`: how long a SQLite statement waits for the store's one writer before
    failing as locked (a request served over HTTP should not wait as long as a sync).
    `bounded` (`arsync serve`): no wait is longer than `busy_timeout` on PostgreSQL either,
    for a lock (`lock_timeout`), for one of the pool's connections or for a new connection;
    and no statement runs longer than `statement_timeout` (default `busy_timeout`), unless
    the URL's `options` (or `PGOPTIONS`) set the operator's own.
    `create=False`: a SQLite file that does not exist is never created (empty) by connecting;
    each connection fails until `arsync db upgrade` has made it.
    """
    limits = {"pool_timeout": busy_timeout} if bounded else {}
    if url.startswith("sqlite"):
        if create:
            _private_file(sqlite_file(url))
        path = None if create else sqlite_file(url)
        if path is not None:  # SQLite's `mode=rw` opens the file or fails, never creates it
            uri = make_url(url).set(database=path.absolute().as_uri())
            url = uri.update_query_dict({"mode": "rw", "uri": "true"}).render_as_string(hide_password=False)
        engine = create_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            **limits,
        )
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_ms=round(busy_timeout * 1000)))
        return engine
    # A host that takes the connection and never answers held a connect for ever: libpq's
    # `connect_timeout` (whole seconds, 2 at least) bounds it too, unless the URL sets its own
    chosen = "connect_timeout" in make_url(url).query
    connect = {"connect_timeout": max(2, math.ceil(busy_timeout))} if bounded and not chosen else {}
    engine = create_engine(
        url, echo=echo, pool_size=pool_size, pool_pre_ping=True, connect_args=connect, **limits
    )
    if bounded:
        # A server that takes a statement and never finishes it (a stall, a plan gone wrong)
        # held the request and its thread for ever: lock_timeout bounds only lock waits
        limits_ms = {"lock_timeout": round(busy_timeout * 1000)}
        if not _sets_statement_timeout(url):
            limits_ms["statement_timeout"] = round((statement_timeout or busy_timeout) * 1000)
        event.listen(engine, "connect", partial(_postgres_timeouts, limits_ms=limits_ms))
    return engine


def _sets_statement_timeout(url: str) -> bool:
    """Whether the operator chose a statement_timeout in `url`'s `options` (or, without
    them, in `PGOPTIONS`, which libpq then sends)."""
    options = make_url(url).query.get("options", os.environ.get("PGOPTIONS", ""))
    return "statement_timeout" in " ".join([options] if isinstance(options, str) else options)


def _private_file(path: Path | None) -> None:
    """Create the store's file readable by its owner only (0600), before SQLite would create
    it as the umask allows (0644): it holds the connections' tokens (plain, without
    `ARSYNC_SECRET_KEY`) and queued invitation mail, whose links open a customer's portal.
    SQLite gives its WAL and shared-memory files the database file's permissions."""
    if path is None or not path.parent.is_dir():
        return
    with suppress(FileExistsError):  # there already, as its owner made it
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _postgres_timeouts(dbapi_connection, _record, *, limits_ms: dict[str, int]) -> None:
    """This connection's session limits: each statement waits at most `lock_timeout` ms for
    a lock (then fails, 55P03) and runs at most `statement_timeout` ms (57014)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute("; ".join(f"SET {name} = {int(ms)}" for name, ms in limits_ms.items()))
    finally:
        dbapi_connection.autocommit = autocommit


def _sqlite_pragmas(dbapi_connection, _record, *, busy_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def head_revision() -> str:
    """The newest migration's revision id.

    Read from the `revision = ...` and `down_revision = ...` lines of the migration files:
    enough for our single line of migrations, and it spares every command importing Alembic
    and every migration module just to compare two ids. Anything unusual (a merge, several
    heads) is left to Alembic's own answer; a test keeps both answers equal.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(match.groups() for match in _ASSIGNED_REVISION.finditer(path.read_text("utf-8")))
        if "revision" not in found:
            continue
        if "down_revision" not in found:
            return _alembic_head()
        revisions.add(found["revision"].strip("\"'"))
        parents.add(found["down_revision"].strip("\"'"))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no arsync schema), read without Alembic."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.scalar(text("SELECT version_num FROM alembic_version"))


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite store URL names, as written (perhaps relative); None for another
    database, an in-memory one or a `file:` URI."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database.startswith("file:") or database == ":memory:":
        return None
    return Path(database)


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite store file `url` names, absolute, if it does not exist (yet)."""
    path = sqlite_file(url)
    return path.absolute() if path is not None and not path.exists() else None


def unopenable_cause(url: str, detail: str) -> str:
    """Where and, as far as the file system tells, why SQLite could not open the store file
    `url` names: "at PATH: CAUSE (DETAIL)", PATH absolute and normalised; `detail` alone (the
    driver's words) for another database or when nothing on the file system explains it."""
    path = sqlite_file(url)
    if path is None:
        return detail
    path = Path(os.path.abspath(path))
    cause = _likely_cause(path, detail)
    return f"at {path}: {cause} ({detail})" if cause else f"at {path}: {detail}"


def _likely_cause(path: Path, detail: str) -> str:
    folder = path.parent
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if path.is_dir():
        return "that is a folder, not a file"
    if path.exists() and "not a database" in detail:
        return "that file is not a SQLite database"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return "no permission to read and write that file"
    if not os.access(folder, os.W_OK | os.X_OK):  # SQLite creates the file, or its -wal and -shm
        return f"no permission to create files in the folder {folder}"
    return ""


def require_existing(url: str) -> None:
    """Refuse a SQLite store file that does not exist yet, before connecting would create it
    empty (for commands that only read: `db upgrade` and the writing ones create it)."""
    path = sqlite_file(url)
    if path is not None and path.parent.is_dir() and not path.exists():  # no folder: the URL's mistake
        raise StoreNotMigrated(f"no store at {path} yet; run `arsync db upgrade` first")


def require_migrated(engine: Engine) -> None:
    """Refuse to work on a database whose schema is missing, older than the code, or newer."""
    current = current_revision(engine)
    if current != head_revision():
        if current is not None:
            _refuse_newer(engine, current)
        state = "has no arsync schema" if current is None else f"is at revision {current}"
        raise StoreNotMigrated(
            f"the database {engine.url.render_as_string(hide_password=True)} {state}; "
            "run `arsync db upgrade` first"
        )


def _refuse_newer(engine: Engine, current: str) -> None:
    """A revision no migration file of this code names was written by a newer arsync: an
    upgrade cannot help (and Alembic would only say it cannot locate the revision)."""
    if any(
        f'revision = "{current}"' in path.read_text("utf-8")
        for path in (MIGRATIONS / "versions").glob("*.py")
    ):
        return
    raise StoreNotMigrated(
        f"the database {engine.url.render_as_string(hide_password=True)} is at revision {current}, "
        f"newer than this arsync's schema ({head_revision()}): run the arsync release that upgraded it"
    )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or migrate the schema to the newest revision; returns (before, after)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    before = current_revision(engine)
    if before is not None:
        _refuse_newer(engine, before)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head_revision()
