"""Mirror of the configured companies in the store (names and time zones the views need)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.tables import Company, Connection


@dataclass(frozen=True, slots=True)
class CompanyRow:
    company_id: str
    name: str
    timezone: str
    kind: str


def register_companies(engine: Engine, companies: Iterable[CompanyRow]) -> None:
    """Insert or update one row per configured company, and its connection row."""
    with engine.begin() as connection:
        session = Session(bind=connection)
        for row in companies:
            company = session.get(Company, row.company_id) or Company(
                company_id=row.company_id, kind=row.kind, name=row.name
            )
            company.name, company.timezone, company.kind = row.name, row.timezone, row.kind
            session.add(company)
            if session.get(Connection, row.company_id) is None:
                session.add(Connection(company_id=row.company_id, kind=row.kind))
        session.flush()
