"""Bind processing for the set-based writes: a page's values column by column, each through
its column type's processor, in one C call wherever the type allows it.

SQLAlchemy processes bind values one call per value through a generic path (a dict build
and a `%` format for SQLite's dates and booleans, a TypeDecorator's two layers for money
and UTC times). A sync binds about a million values in a 100k pull, so the writers
(`store.bulk`, `store.upsert`) take these processors instead: the same results, and the same errors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from itertools import repeat
from operator import is_

from sqlalchemy import Boolean, Date, DateTime, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from store.types import all_exactly, batched, date_texts

Processor = Callable[[object], object]


def bound_columns(
    columns: tuple[str, ...],
    rows: Sequence[tuple],
    fixed: Mapping[str, object],
    order: tuple[str, ...],
    processors: tuple[Processor | None, ...],
) -> list[Sequence]:
    """The rows' values column by column, in the statement's order, each value bind-processed.

    Worked by column so that the only Python-level work per value is its type's own
    processing, and none where the type processes a whole column in C (`many`, for the
    usual values: amounts, UTC times, booleans); a column whose every value is one
    object (a shared value, a page's `synced_at` in dict rows) is processed once.
    """
    count = len(rows)
    given = dict(zip(columns, zip(*rows, strict=True), strict=True))
    prepared = []
    for column, process in zip(order, processors, strict=True):
        values = (fixed[column],) if column in fixed else given[column]
        if process is None:
            prepared.append(values if len(values) == count else [values[0]] * count)
        elif all(map(is_, values, repeat(values[0]))):
            prepared.append([process(values[0])] * count)
        else:
            many = getattr(process, "many", None)
            done = many(values) if many is not None else None
            prepared.append(list(map(process, values)) if done is None else done)
    return prepared


def bind_processor(type_: TypeEngine, dialect: Dialect) -> Processor | None:
    """The column type's bind processing for `dialect`, with the same result for every value.

    SQLAlchemy's own processors for booleans and for SQLite's DATE and DATETIME strings go
    through a dict build and a `%` format per value; these take one C call for the values
    a sync writes and hand anything else to the original, so results (and errors) are the
    same. A TypeDecorator's `process_bind_param` is kept, in front of its implementation's,
    unless the type brings a `bind_processor` of its own (Money and UTCDateTime do).
    """
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, TypeDecorator):
        if type(impl).bind_processor is not TypeDecorator.bind_processor:
            return impl.bind_processor(dialect)  # the type's own fast path
        inner = bind_processor(impl.impl_instance, dialect)
        if type(impl).process_bind_param is TypeDecorator.process_bind_param:
            return inner
        param = functools.partial(impl.process_bind_param, dialect=dialect)
        return param if inner is None else lambda value: inner(param(value))
    original = impl.bind_processor(dialect)
    if original is None:
        return None
    if isinstance(impl, Boolean):
        return _fast_bool(original, native=dialect.supports_native_boolean)
    if dialect.name == "sqlite" and isinstance(impl, DateTime):
        return _checked(original, _naive_datetime_text(original), datetime(2026, 12, 31, 23, 59, 58, 7))
    if dialect.name == "sqlite" and isinstance(impl, Date):
        return _checked(original, _date_text(original), date(2026, 12, 31))
    return original


def _fast_bool(original: Processor, *, native: bool) -> Processor:
    table = {True: True, False: False, None: None} if native else {True: 1, False: 0, None: None}

    def process(value):
        try:
            return table[value]
        except (KeyError, TypeError):  # not a boolean: the original's own error
            return original(value)

    def many(values):
        try:
            return list(map(table.__getitem__, values))
        except (KeyError, TypeError):
            return None

    return batched(process, many)


def _naive_datetime_text(original: Processor) -> Processor:
    def process(value):
        if value.__class__ is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return original(value)

    return process


def _date_text(original: Processor) -> Processor:
    def process(value):
        return value.isoformat() if value.__class__ is date else original(value)

    def many(values):
        return date_texts(values) if all_exactly(date, values) else None

    return batched(process, many)


def _checked(original: Processor, fast: Processor, probe: object) -> Processor:
    """`fast` if it stores what `original` does (a column declared with another storage format does not)."""
    return fast if fast(probe) == original(probe) and fast(None) is None else original
