"""Parse the list parameters of GET /Contacts and /Invoices as Xero understands them.

Supported: `page` (1-based) and `pageSize` (default 100, capped at 1000), the
`If-Modified-Since` header (HTTP-date or ISO 8601 as xero-python sends it; naive = UTC),
`includeArchived`, `Statuses` (comma separated), `IDs`, `order` (`UpdatedDateUTC ASC|DESC`
or the record's id, e.g. `InvoiceID ASC|DESC`; other fields are accepted and keep the
default order, UpdatedDateUTC then id) and a `where` subset: clauses
`Field == value` / `Field != value` joined by `AND` / `&&`, and such groups joined by `OR` /
`||` (AND binds tighter), values `"text"`, `true`, `false` or `guid("...")`. Query parameter
names are case-insensitive, as at Xero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from connectors.simulators.xero_render import to_ms

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
UPDATED = "updateddateutc"  # the default order, then the record's id

_CLAUSE = re.compile(
    r"""^\s*(?P<field>[A-Za-z][A-Za-z.]*)\s*(?P<op>==|!=)\s*
        (?:"(?P<text>[^"]*)"|(?P<bool>true|false)|guid\(\s*"(?P<guid>[^"]*)"\s*\))\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"\s+AND\s+|\s*&&\s*", re.IGNORECASE)
_OR = re.compile(r"\s+OR\s+|\s*\|\|\s*", re.IGNORECASE)


class QueryError(ValueError):
    """A parameter Xero would refuse with 400; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Clause:
    field: str  # lower-cased field name, e.g. "type", "contact.contactid"
    equal: bool  # == (True) or != (False)
    value: str | bool  # strings compare case-insensitively (lower-cased here)

    def matches(self, fields: dict[str, str | bool]) -> bool:
        actual = fields.get(self.field)
        if isinstance(actual, str):
            actual = actual.lower()
        return (actual == self.value) == self.equal


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One list request; everything but the page itself is the `view_key` of a filtered view."""

    page: int | None = None  # None: unpaged, every matching record in one answer
    page_size: int = DEFAULT_PAGE_SIZE
    modified_after_ms: int | None = None  # If-Modified-Since, exclusive
    include_archived: bool = False
    statuses: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    where: tuple[tuple[Clause, ...], ...] = ()  # groups ORed, each group's clauses ANDed
    order_by: str = UPDATED  # the lower-cased field `order` names (its collection knows its id field)
    descending: bool = False

    def view_key(self) -> tuple:
        """The filter part of the query: pages of one pull share one filtered view."""
        return (
            self.modified_after_ms,
            self.include_archived,
            self.statuses,
            self.ids,
            self.where,
            self.order_by,
            self.descending,
        )


def parse_list_query(query: dict[str, list[str]], if_modified_since: str | None) -> ListQuery:
    """Build a ListQuery from the raw query string and the If-Modified-Since header."""
    params = {name.lower(): values[-1] for name, values in query.items() if values}
    page = _int(params, "page")
    size = _int(params, "pagesize")
    order_by, descending = _order(params.get("order", ""))
    return ListQuery(
        page=None if page is None else max(1, page),
        page_size=DEFAULT_PAGE_SIZE if size is None else min(max(1, size), MAX_PAGE_SIZE),
        modified_after_ms=parse_if_modified_since(if_modified_since),
        include_archived=params.get("includearchived", "").lower() == "true",
        statuses=_csv(params.get("statuses"), upper=True),
        ids=_csv(params.get("ids"), upper=False),
        where=parse_where(params.get("where", "")),
        order_by=order_by,
        descending=descending,
    )


def parse_if_modified_since(value: str | None) -> int | None:
    """Epoch milliseconds of the header value; HTTP-date or ISO 8601, naive taken as UTC."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise QueryError(f"If-Modified-Since is not a date: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_ms(moment)


def parse_where(text: str) -> tuple[tuple[Clause, ...], ...]:
    """The supported subset of Xero's `where` filter (see the module docstring): groups of
    clauses, a record matching when every clause of one group matches."""
    if not text.strip():
        return ()
    return tuple(_conjunction(group) for group in _OR.split(text.strip()))


def _conjunction(text: str) -> tuple[Clause, ...]:
    clauses = []
    for part in _AND.split(text.strip()):
        match = _CLAUSE.match(part)
        if match is None:
            raise QueryError(
                f"unsupported where clause {part!r} (simulator supports == / != "
                'on "text", true/false and guid("...") joined by AND and OR)'
            )
        if match["bool"] is not None:
            value: str | bool = match["bool"].lower() == "true"
        else:
            value = (match["text"] if match["text"] is not None else match["guid"]).lower()
        clauses.append(Clause(match["field"].lower(), match["op"] == "==", value))
    return tuple(clauses)


def _int(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw!r}") from None


def _csv(raw: str | None, *, upper: bool) -> frozenset[str] | None:
    if not raw:
        return None
    items = (item.strip() for item in raw.split(","))
    return frozenset(item.upper() if upper else item.lower() for item in items if item)


def _order(order: str) -> tuple[str, bool]:
    """The lower-cased field and whether descending, of an `order` such as "InvoiceID DESC"."""
    field, _, direction = order.strip().partition(" ")
    return field.lower() or UPDATED, direction.strip().upper() == "DESC"
