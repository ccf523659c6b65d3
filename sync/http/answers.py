"""The read routes' answers: the store's rows as plain JSON, encoded once by msgspec.

Routes still declare their pydantic `response_model` (the OpenAPI document's schemas) but
return a `JSONBody`, so FastAPI neither validates nor encodes the answer a second time: a
store row (a frozen dataclass) is copied field by field, money (`Decimal`) as a decimal
string, dates as ISO 8601. A test holds every answer to its declared schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec
from fastapi.responses import Response
from sqlalchemy import Engine

from portal_rules.money import decimal_text
from store.portal_customers import in_portal
from sync.config import CompanyConfig
from sync.http.context import ServerContext
from sync.http.errors import Problem

_encoder = msgspec.json.Encoder()


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


@cache
def _names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind))


def plain(row: object) -> dict[str, Any]:
    """A store row as a JSON object: money as decimal strings, everything else as it is."""
    out = {}
    for name in _names(type(row)):
        value = getattr(row, name)
        out[name] = decimal_text(value) if isinstance(value, Decimal) else value
    return out


def customer_in_portal(engine: Engine, company: CompanyConfig, ref: str) -> str:
    """`ref`, if the customer is shown by the company's portal; else 404."""
    if not in_portal(engine, company.id, ref):
        raise Problem(404, "no such customer")
    return ref


def customer_listing(
    context: ServerContext,
    company: CompanyConfig,
    ref: str,
    name: str,
    read: Callable[[Engine, str, str], Iterable[object]],
) -> JSONBody:
    """`{name: [...]}`: the rows `read` gives for one customer of the portal, each with its
    company and customer (404 for a customer the portal does not show)."""
    customer_in_portal(context.engine, company, ref)
    scope = {"company_id": company.id, "customer_ref": ref}
    return JSONBody({name: [scope | plain(row) for row in read(context.engine, company.id, ref)]})
