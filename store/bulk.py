"""The store's set-based write primitives, for SQLite and PostgreSQL alike.

`insert_ignoring` (INSERT ... ON CONFLICT DO NOTHING) records rows that another process
may have recorded first (ledger entries, registrations, outbox messages), and
`insert_many_ignoring` says which of them went in; `insert_many` inserts rows that must all
be new (the ledger's sent pairs); `update_by_key`
sets columns of many rows by their key in one statement; `among` and `select_among` look a
page's keys up. Synced rows are written by `store.upsert`. The INSERT's dialect is picked
here (`insert_for`, which `store.upsert` takes too); values are bound by `store.binds`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert

from store.binds import bind_processor, bound_columns


def dialect_insert(connection: Connection, table: Table) -> Insert:
    """An INSERT of `table` that knows its dialect's ON CONFLICT clauses."""
    return insert_for(connection.dialect)(table)


def insert_for(dialect: Dialect):
    """The `insert` of `dialect` (PostgreSQL's or SQLite's), with its ON CONFLICT clauses."""
    return pg_insert if dialect.name == "postgresql" else sqlite_insert


def among(connection: Connection, column: ColumnElement, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` for a page's worth of values, bound as one parameter.

    A thousand-item IN list is a thousand bind parameters to render, send and plan per
    statement (on PostgreSQL that planning took longer than the page's writes): an array
    with `= ANY` on PostgreSQL, a JSON array read by `json_each` on SQLite, probe the same
    index.
    """
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    refs = select(literal_column("value")).select_from(
        func.json_each(bindparam(None, json.dumps(list(values))))
    )
    return column.in_(refs)


def select_among(
    connection: Connection,
    key: ColumnElement,
    values: Sequence[str],
    columns: Sequence[ColumnElement],
    *where,
) -> Select:
    """SELECT `columns` of the rows (matching `where`) whose `key` is one of `values`.

    On PostgreSQL each value is looked up on its own (a LATERAL subquery behind an
    OFFSET 0 fence), so the key's index is probed once per value whatever the statistics
    say: a table filled by the very sync that reads it has none yet, and the planner then
    preferred scanning the whole company through another index, once per page.
    """
    if connection.dialect.name != "postgresql":
        return select(*columns).where(*where, among(connection, key, values))
    keys = func.unnest(bindparam(None, list(values), type_=ARRAY(key.type)))
    keys = keys.table_valued("value").render_derived(name="keys")
    found = select(*columns).where(*where, key == keys.c.value).offset(0).lateral()
    return select(*found.c).select_from(keys).join(found, true())


def insert_ignoring(connection: Connection, table: Table, rows: Sequence[dict]) -> None:
    """Insert `rows`, leaving alone any whose key another writer stored first."""
    if rows:
        connection.execute(dialect_insert(connection, table).on_conflict_do_nothing(), list(rows))


def insert_one_ignoring(connection: Connection, table: Table, row: dict) -> int | None:
    """Insert one row unless its key exists; its id, or None for a duplicate.

    DO NOTHING (not an exception) keeps the caller's transaction usable on a duplicate. The
    row goes as parameters of a statement compiled once, not as values built into a new one.
    """
    statement = dialect_insert(connection, table).on_conflict_do_nothing().returning(table.c.id)
    return connection.execute(statement, row).scalar_one_or_none()


def insert_many_ignoring(
    connection: Connection, table: Table, rows: Sequence[dict], key: str
) -> dict[object, int]:
    """Insert `rows` (each with a unique `key` column), leaving alone any whose key is stored
    already; the id of each row inserted, by its `key`.

    A list of parameters with RETURNING: SQLAlchemy sends it as multi-row INSERTs it compiles
    once ("insertmanyvalues"), never as the driver's executemany (psycopg's pipeline logged a
    warning for every statement a conflict aborted).
    """
    if not rows:
        return {}
    statement = dialect_insert(connection, table).on_conflict_do_nothing()
    returned = connection.execute(statement.returning(table.c[key], table.c.id), list(rows))
    return {stored_key: id_ for stored_key, id_ in returned}


def insert_many(connection: Connection, table: Table, rows: Sequence[dict]) -> None:
    """Insert `rows`, all new: `IntegrityError` if one's key is stored already (the caller's
    transaction then rolls back). Sent as multi-row INSERTs compiled once, as
    `insert_many_ignoring` is, not through psycopg's pipelined executemany."""
    if rows:
        statement = dialect_insert(connection, table).returning(*table.primary_key.columns)
        connection.execute(statement, list(rows)).all()


def update_by_key(
    connection: Connection,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    unless_changed: Sequence[str] = (),
) -> None:
    """Set `columns` of the rows whose `key` (a unique column, as `id`) is given.

    `rows` are tuples: the key's value, then the columns' values in order, each through
    its column type's bind processing, then the values read of the `unless_changed` columns:
    a row whose column holds another value now (another transaction committed one since the
    read) is left as it is. SQLite: a driver executemany of one UPDATE by key. PostgreSQL:
    one UPDATE ... FROM unnest() of the values as arrays, where an UPDATE per row, even
    pipelined, took ~0.3 s for a company's 9,000 contacts at the end of a pull.
    """
    if not rows:
        return
    dialect = connection.dialect
    names = (key, *columns, *unless_changed)
    labels = (key, *columns, *(f"{name} read" for name in unless_changed))
    processors = tuple(bind_processor(table.c[name].type, dialect) for name in names)
    bound = bound_columns(labels, rows, {}, labels, processors)
    quote, target = dialect.identifier_preparer.quote, dialect.identifier_preparer.format_table(table)
    compared = range(1 + len(columns), len(names))
    if dialect.name == "postgresql":
        arrays = ", ".join(
            f"%(v{i})s::{table.c[name].type.compile(dialect)}[]" for i, name in enumerate(names)
        )
        sets = ", ".join(f"{quote(name)} = v.c{i}" for i, name in enumerate(columns, start=1))
        where = "".join(f" AND t.{quote(names[i])} = v.c{i}" for i in compared)
        aliases = ", ".join(f"c{i}" for i in range(len(names)))
        connection.exec_driver_sql(
            f"UPDATE {target} AS t SET {sets} FROM unnest({arrays}) AS v({aliases})"
            f" WHERE t.{quote(key)} = v.c0{where}",
            {f"v{i}": list(values) for i, values in enumerate(bound)},
        )
        return
    sets = ", ".join(f"{quote(name)} = ?" for name in columns)
    where = "".join(f" AND {quote(names[i])} = ?" for i in compared)
    parameters = [*bound[1 : 1 + len(columns)], bound[0], *(bound[i] for i in compared)]
    connection.exec_driver_sql(
        f"UPDATE {target} SET {sets} WHERE {quote(key)} = ?{where}", list(zip(*parameters, strict=True))
    )
