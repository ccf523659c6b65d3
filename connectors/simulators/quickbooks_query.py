"""The subset of the QuickBooks Online query language a sync needs, parsed into a `Query`.

    SELECT * | COUNT(*) | field, ... FROM Customer|Invoice|Payment|CreditMemo
      [WHERE cond AND cond ...]          cond: field op literal | field IN (...) | field LIKE '%x%'
      [ORDERBY|ORDER BY field [ASC|DESC], ...] [STARTPOSITION n] [MAXRESULTS n]

Keywords and field names are case-insensitive; OR is not part of the language (as in QBO).
A field list (`SELECT Id FROM Invoice WHERE Id IN ('1','2')`) answers sparse records holding
only those fields.
MAXRESULTS defaults to 100 and is capped at 1000; STARTPOSITION counts from 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_MAX_RESULTS = 100
MAX_RESULTS_CAP = 1000
ENTITIES = ("Customer", "Invoice", "Payment", "CreditMemo")

# field name -> value type; the index supplies a getter per canonical name.
_COMMON = {"Id": "id", "MetaData.CreateTime": "ts", "MetaData.LastUpdatedTime": "ts"}
FIELDS: dict[str, dict[str, str]] = {
    "Customer": {
        **_COMMON,
        "Active": "bool",
        "DisplayName": "str",
        "CompanyName": "str",
        "PrimaryEmailAddr": "str",
        "Balance": "dec",
    },
    "Invoice": {
        **_COMMON,
        "DocNumber": "str",
        "TxnDate": "date",
        "DueDate": "date",
        "CustomerRef": "id",
        "TotalAmt": "dec",
        "Balance": "dec",
    },
    "Payment": {**_COMMON, "TxnDate": "date", "CustomerRef": "id", "TotalAmt": "dec", "PaymentRefNum": "str"},
    "CreditMemo": {
        **_COMMON,
        "DocNumber": "str",
        "TxnDate": "date",
        "CustomerRef": "id",
        "TotalAmt": "dec",
        "Balance": "dec",
    },
}
_OPS = ("=", "!=", "<", ">", "<=", ">=", "IN", "LIKE")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
     |(?P<num>-?\d+(?:\.\d+)?)
     |(?P<op><=|>=|!=|<>|=|<|>)
     |(?P<punct>[(),*])
     |(?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)


class QueryError(ValueError):
    """The query cannot be parsed or uses an unsupported entity, field or clause."""


@dataclass(frozen=True)
class Condition:
    field: str  # canonical name, e.g. "MetaData.LastUpdatedTime"
    op: str  # one of _OPS
    values: tuple[Any, ...]  # literals as written: str, bool or Decimal


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool
    conditions: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    start: int = 1
    max_results: int = DEFAULT_MAX_RESULTS
    fields: tuple[str, ...] = ()  # a projection; empty: every field (SELECT *)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"QueryParserError: Encountered unexpected text at {text[pos:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def keyword(self, *words: str) -> str | None:
        kind, value = self.peek()
        if kind == "word" and value.upper() in words:
            self.pos += 1
            return value.upper()
        return None

    def expect(self, kind: str, value: str | None = None) -> str:
        got_kind, got = self.take()
        if got_kind != kind or (value is not None and got.upper() != value):
            wanted = value or kind
            raise QueryError(f"QueryParserError: Encountered {got!r}, expected {wanted!r}")
        return got


def parse_query(text: str) -> Query:
    """Parse one QBO SELECT statement."""
    p = _Parser(text)
    p.expect("word", "SELECT")
    count = p.keyword("COUNT") is not None
    names: list[str] = []
    if count:
        p.expect("punct", "(")
        p.expect("punct", "*")
        p.expect("punct", ")")
    elif p.peek() == ("punct", "*"):
        p.take()
    else:
        names.append(p.expect("word"))
        while p.peek() == ("punct", ","):
            p.take()
            names.append(p.expect("word"))
    p.expect("word", "FROM")
    entity = _entity(p.expect("word"))
    fields = tuple(_field(entity, name) for name in names)
    conditions: list[Condition] = []
    if p.keyword("WHERE"):
        conditions.append(_condition(p, entity))
        while p.keyword("AND"):
            conditions.append(_condition(p, entity))
    order, start, max_results = (), 1, DEFAULT_MAX_RESULTS
    while p.peek()[0] != "end":
        word = p.keyword("ORDERBY", "ORDER", "STARTPOSITION", "MAXRESULTS", "OR")
        if word == "OR":
            raise QueryError("QueryParserError: OR is not supported")
        if word in ("ORDERBY", "ORDER"):
            if word == "ORDER":
                p.expect("word", "BY")
            order = _order(p, entity)
        elif word in ("STARTPOSITION", "MAXRESULTS"):
            number = int(p.expect("num"))
            if number < 1:
                raise QueryError(f"QueryValidationError: {word} must be at least 1")
            if word == "STARTPOSITION":
                start = number
            else:
                max_results = min(number, MAX_RESULTS_CAP)
        else:
            raise QueryError(f"QueryParserError: Encountered {p.peek()[1]!r}")
    return Query(entity, count, tuple(conditions), order, start, max_results, fields)


def _entity(name: str) -> str:
    for entity in ENTITIES:
        if entity.lower() == name.lower():
            return entity
    raise QueryError(f"QueryValidationError: unsupported entity {name!r}")


def _field(entity: str, name: str) -> str:
    for field in FIELDS[entity]:
        if field.lower() == name.lower():
            return field
    raise QueryError(f"QueryValidationError: property '{name}' is not queryable on {entity}")


def _condition(p: _Parser, entity: str) -> Condition:
    field = _field(entity, p.expect("word"))
    kind, value = p.take()
    if kind == "op":
        op = "!=" if value == "<>" else value
        return Condition(field, op, (_literal(p.take()),))
    if kind == "word" and value.upper() in ("IN", "LIKE"):
        if value.upper() == "LIKE":
            return Condition(field, "LIKE", (_literal(p.take()),))
        p.expect("punct", "(")
        values = [_literal(p.take())]
        while p.peek() == ("punct", ","):
            p.take()
            values.append(_literal(p.take()))
        p.expect("punct", ")")
        return Condition(field, "IN", tuple(values))
    raise QueryError(f"QueryParserError: Encountered {value!r}, expected an operator")


def _literal(token: tuple[str, str]) -> Any:
    kind, value = token
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    if kind == "num":
        return Decimal(value)
    if kind == "word" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise QueryError(f"QueryParserError: Encountered {value!r}, expected a value")


def _order(p: _Parser, entity: str) -> tuple[tuple[str, bool], ...]:
    order = []
    while True:
        field = _field(entity, p.expect("word"))
        direction = p.keyword("ASC", "DESC")
        order.append((field, direction == "DESC"))
        if p.peek() != ("punct", ","):
            return tuple(order)
        p.take()


# -- evaluation ------------------------------------------------------------------------


def id_key(value: str) -> tuple[int, int | str]:
    """QBO ids are numeric strings and sort as numbers; anything else sorts after them."""
    return (0, int(value)) if value.isdigit() else (1, value)


def parse_timestamp(value: str, tz: tzinfo) -> int:
    """Epoch seconds of a QBO datetime literal; no offset means the company's time zone."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise QueryError(f"QueryValidationError: invalid date-time {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return int(parsed.timestamp())


def _coerce(kind: str, value: Any, tz: tzinfo) -> Any:
    try:
        if kind == "id":
            return id_key(str(value).split(".")[0] if isinstance(value, Decimal) else str(value))
        if kind == "ts":
            return parse_timestamp(str(value), tz)
        if kind == "date":
            return date.fromisoformat(str(value)[:10])
        if kind == "dec":
            return Decimal(str(value))
        if kind == "bool":
            if not isinstance(value, bool):
                raise QueryError(f"QueryValidationError: {value!r} is not true or false")
            return value
        return str(value)
    except (ValueError, InvalidOperation) as exc:
        raise QueryError(f"QueryValidationError: invalid value {value!r}") from exc


def compile_conditions(
    query: Query, getters: dict[str, Callable[[Any], Any]], tz: tzinfo
) -> Callable[[Any], bool]:
    """One predicate over index rows for all the query's conditions (ANDed)."""
    tests = [_compile(query.entity, cond, getters[cond.field], tz) for cond in query.conditions]
    return lambda row: all(test(row) for test in tests)


def _compile(entity: str, cond: Condition, get: Callable[[Any], Any], tz: tzinfo) -> Callable[[Any], bool]:
    kind = FIELDS[entity][cond.field]
    values = [_coerce(kind, value, tz) for value in cond.values]
    if cond.op == "IN":
        allowed = set(values)
        return lambda row: get(row) in allowed
    if cond.op == "LIKE":
        pattern = re.compile(".*".join(re.escape(part) for part in str(values[0]).split("%")), re.I | re.S)
        return lambda row: pattern.fullmatch(str(get(row) or "")) is not None
    target = values[0]
    compare = {
        "=": lambda a: a == target,
        "!=": lambda a: a != target,
        "<": lambda a: a is not None and a < target,
        ">": lambda a: a is not None and a > target,
        "<=": lambda a: a is not None and a <= target,
        ">=": lambda a: a is not None and a >= target,
    }[cond.op]
    return lambda row: compare(get(row))
