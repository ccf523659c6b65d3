"""The store's two set-based write primitives, for SQLite and PostgreSQL alike.

`upsert` (INSERT ... ON CONFLICT DO UPDATE) writes synced rows; `insert_ignoring`
(INSERT ... ON CONFLICT DO NOTHING) records rows that another process may have recorded
first (ledger entries, registrations, outbox messages). This module is the only place that
picks an INSERT dialect.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from operator import itemgetter

from sqlalchemy import Connection, Dialect, Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert


def dialect_insert(connection: Connection, table: Table) -> Insert:
    """An INSERT of `table` that knows its dialect's ON CONFLICT clauses."""
    return _insert_for(connection.dialect)(table)


def _insert_for(dialect: Dialect):
    return pg_insert if dialect.name == "postgresql" else sqlite_insert


def insert_ignoring(connection: Connection, table: Table, rows: Sequence[dict]) -> None:
    """Insert `rows`, leaving alone any whose key another writer stored first."""
    if rows:
        connection.execute(dialect_insert(connection, table).on_conflict_do_nothing(), list(rows))


def insert_one_ignoring(connection: Connection, table: Table, row: dict) -> int | None:
    """Insert one row unless its key exists; its id, or None for a duplicate.

    DO NOTHING (not an exception) keeps the caller's transaction usable on a duplicate.
    """
    statement = dialect_insert(connection, table).values(row).on_conflict_do_nothing()
    return connection.execute(statement.returning(table.c.id)).scalar_one_or_none()


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict],
    keys: Sequence[str],
    update_columns: Iterable[str],
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update_columns.

    One statement per call, compiled once and run as a driver executemany of prepared
    tuples: building parameters row by row through SQLAlchemy cost more than the database
    work itself. Values still go through each column type's own bind processor (exact
    money, UTC times), and columns the rows leave out get their scalar defaults, as an ORM
    insert would.
    """
    if not rows:
        return
    given = tuple(rows[0])
    defaults = _scalar_defaults(table, given)
    sql, order, processors = _compiled_upsert(
        connection.dialect, table, given + tuple(defaults), tuple(keys), tuple(update_columns)
    )
    connection.exec_driver_sql(sql, _prepared(rows, order, processors, defaults))


_UNSEEN = object()


def _prepared(rows: Sequence[dict], order: tuple[str, ...], processors: tuple, defaults: dict) -> list[tuple]:
    """The rows as tuples in the statement's column order, each value through its bind processor.

    Columns the rows leave out hold their (processed) defaults. A value that is the same
    object as the previous row's in that column (the page's `synced_at`, its run id) is
    processed once.
    """
    template = [None] * len(order)
    from_row: list[int] = []
    for index, column in enumerate(order):
        if column in defaults:
            value = defaults[column]
            template[index] = processors[index](value) if processors[index] else value
        else:
            from_row.append(index)
    columns = [order[i] for i in from_row]
    get = itemgetter(*columns) if len(columns) > 1 else (lambda row, c=columns[0]: (row[c],))
    steps = [(slot, processors[i]) for slot, i in enumerate(from_row) if processors[i]]
    last_in, last_out = [_UNSEEN] * len(steps), [None] * len(steps)
    prepared = []
    whole = len(from_row) == len(order)
    for row in rows:
        values = list(get(row))
        for step, (slot, process) in enumerate(steps):
            value = values[slot]
            if value is last_in[step]:
                values[slot] = last_out[step]
            else:
                last_in[step], last_out[step] = value, process(value)
                values[slot] = last_out[step]
        if not whole:
            full = template.copy()
            for slot, index in enumerate(from_row):
                full[index] = values[slot]
            values = full
        prepared.append(tuple(values))
    return prepared


def _scalar_defaults(table: Table, given: tuple[str, ...]) -> dict[str, object]:
    return {
        column.name: column.default.arg
        for column in table.columns
        if column.name not in given and column.default is not None and column.default.is_scalar
    }


@functools.cache
def _compiled_upsert(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    update_columns: tuple[str, ...],
) -> tuple[str, tuple[str, ...], tuple]:
    """The upsert's SQL for the driver, the column order it binds, and each column's bind processor."""
    statement = _insert_for(dialect)(table).values({c: bindparam(c) for c in columns})
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: statement.excluded[c] for c in update_columns}
    )
    compiled = statement.compile(dialect=dialect)
    sql = compiled.string
    if compiled.positional:
        order = tuple(compiled.positiontup)
    else:  # pyformat: %(name)s -> %s, in the order the names appear, so rows can be tuples
        order = tuple(sorted(columns, key=lambda c: sql.index(f"%({c})s")))
        for column in columns:
            sql = sql.replace(f"%({column})s", "%s")
    return sql, order, tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in order)
