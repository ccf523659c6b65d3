"""Customer health in the store: recompute a company's scores, admin overrides, reads.

`recompute` is one set-based tally of the company's visible invoices due in the window
(`store.health_tally`), `portal_rules.health.score` per customer, and one replacement of
the company's computed rows, in one transaction. Overrides live in
their own table, which no recomputation touches; the `customer_health` view picks the
override when there is one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, text

from portal_rules.balances import company_today
from portal_rules.health import Health, Tally, band_of, score
from store.admin import NotFound
from store.bulk import among
from store.health_tables import HealthOverride, HealthScore
from store.health_tally import company_tallies
from store.tables import Company, Customer
from store.types import UTCDateTime
from store.upsert import insert_new

SCORES = HealthScore.__table__
OVERRIDES = HealthOverride.__table__
COMPANIES = Company.__table__
CUSTOMERS = Customer.__table__
EMPTY = Tally()


@dataclass(frozen=True, slots=True)
class CustomerHealth:
    """One row of the `customer_health` view, with the customer's name."""

    customer_ref: str
    display_name: str
    score: int | None
    band: str
    source: str  # computed | override
    reasons: str
    computed_at: datetime

    def as_json(self, company_id: str) -> dict:
        return {
            "company": company_id,
            "customer_ref": self.customer_ref,
            "display_name": self.display_name,
            "score": self.score,
            "band": self.band,
            "source": self.source,
            "reasons": self.reasons,
            "computed_at": self.computed_at.isoformat(),
        }


SCOPED_AT_MOST = 200  # customers; beyond, one set-based pass over the company is cheaper


def recompute(
    engine: Engine, company_id: str, now: datetime, customer_refs: Collection[str] | None = None
) -> int:
    """Recompute the health of the company's customers in the portal; returns how many.

    All of them, or only `customer_refs` (what an incremental sync touched: its cost then
    follows the changes, not the company). "Today" is the company's local date at `now`.
    Concurrent recomputations of one company (end of a sync, the daily job) run one after
    the other: the company row is locked.
    """
    if customer_refs is not None and len(customer_refs) > SCOPED_AT_MOST:
        customer_refs = None
    with engine.begin() as connection:
        timezone = _lock_company(connection, company_id)
        today = company_today(now, timezone)
        if customer_refs is not None and _computed_before(connection, company_id, today, timezone):
            customer_refs = None  # days past due moved on for every customer, changed or not
        if customer_refs is None:
            assessed = list(_assess(connection, company_id, today))
            connection.execute(delete(SCORES).where(SCORES.c.company_id == company_id))
        else:
            refs = sorted(customer_refs)
            assessed = [pair for ref in refs for pair in _assess(connection, company_id, today, ref)]
            if refs:
                connection.execute(
                    delete(SCORES).where(
                        SCORES.c.company_id == company_id, among(connection, SCORES.c.customer_ref, refs)
                    )
                )
        rows = [(ref, health.score, str(health.band), health.reasons) for ref, health in assessed]
        # The rows were deleted just above, under the company's lock: every one is new.
        shared = {"company_id": company_id, "computed_at": now}
        insert_new(connection, SCORES, rows, _SCORE_KEYS, columns=_SCORE_COLUMNS, shared=shared)
    return len(rows)


_SCORE_KEYS = ("company_id", "customer_ref")
_SCORE_COLUMNS = ("customer_ref", "score", "band", "reasons")


def _lock_company(connection: Connection, company_id: str) -> str:
    """Lock the company's row (one recomputation at a time); its time zone."""
    timezone = connection.scalar(
        select(COMPANIES.c.timezone).where(COMPANIES.c.company_id == company_id).with_for_update()
    )
    if timezone is None:
        raise NotFound(f"no company {company_id!r} in the store")
    return timezone


def _computed_before(connection: Connection, company_id: str, today: date, timezone: str) -> bool:
    """Whether some computed score of the company is from before its `today` (or none is
    stored): an open invoice's days past due have grown since, so the whole company is due."""
    oldest = connection.scalar(
        select(func.min(SCORES.c.computed_at)).where(SCORES.c.company_id == company_id)
    )
    return oldest is None or company_today(oldest, timezone) < today


def _assess(
    connection: Connection, company_id: str, today: date, customer_ref: str | None = None
) -> Iterable[tuple[str, Health]]:
    """(customer_ref, health) for each customer in the portal (or just `customer_ref`)."""
    tallies = company_tallies(connection, company_id, today, customer_ref)
    customers = select(CUSTOMERS.c.ref).where(
        CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.portal_visible.is_(True)
    )
    if customer_ref is not None:
        customers = customers.where(CUSTOMERS.c.ref == customer_ref)
    for (ref,) in connection.execute(customers):
        yield ref, score(tallies.get(ref, EMPTY))


def _score_row(company_id: str, customer_ref: str, health: Health, now: datetime) -> dict:
    return {
        "company_id": company_id,
        "customer_ref": customer_ref,
        "score": health.score,
        "band": str(health.band),
        "reasons": health.reasons,
        "computed_at": now,
    }


def set_override(
    engine: Engine,
    company_id: str,
    customer_ref: str,
    score: int,
    *,
    note: str | None,
    by: str,
    now: datetime,
) -> bool:
    """`arsync customer set-health`: the admin's score wins until cleared (ValueError outside 0..100).

    True when `customer_health` shows it now; False for a customer not in the portal (inactive,
    say): the override is kept, and shows once the customer is back."""
    band = band_of(score)
    with engine.begin() as connection:
        today = company_today(now, _lock_company(connection, company_id))
        _require_customer(connection, company_id, customer_ref)
        where = (OVERRIDES.c.company_id == company_id, OVERRIDES.c.customer_ref == customer_ref)
        connection.execute(delete(OVERRIDES).where(*where))
        connection.execute(
            insert(OVERRIDES).values(
                company_id=company_id,
                customer_ref=customer_ref,
                score=score,
                band=str(band),
                note=note,
                set_by=by,
                set_at=now,
            )
        )
        if connection.scalar(select(SCORES.c.band).where(*_score_key(company_id, customer_ref))) is not None:
            return True
        # Not computed yet (no sync since the upgrade): compute it now so the view shows the
        # override; none for a customer not in the portal
        rows = [
            _score_row(company_id, ref, h, now)
            for ref, h in _assess(connection, company_id, today, customer_ref)
        ]
        if rows:
            connection.execute(insert(SCORES), rows)
        return bool(rows)


def clear_override(engine: Engine, company_id: str, customer_ref: str) -> bool:
    """`arsync customer clear-health`: back to the computed score; False if there was no override."""
    with engine.begin() as connection:
        _require_customer(connection, company_id, customer_ref)
        return bool(
            connection.execute(
                delete(OVERRIDES).where(
                    OVERRIDES.c.company_id == company_id, OVERRIDES.c.customer_ref == customer_ref
                )
            ).rowcount
        )


def read(engine: Engine, company_id: str, customer_ref: str | None = None) -> list[CustomerHealth]:
    """Rows of the `customer_health` view for the company (or one customer), worst first.

    Unknown scores (no visible invoice in the window) come last; NotFound for a customer
    the company does not have.
    """
    query = """
        SELECT h.customer_ref, c.display_name, h.score, h.band, h.source, h.reasons, h.computed_at
        FROM customer_health h
        JOIN customers c ON c.company_id = h.company_id AND c.ref = h.customer_ref
        WHERE h.company_id = :company"""
    params = {"company": company_id}
    if customer_ref is not None:
        query += " AND h.customer_ref = :ref"
        params["ref"] = customer_ref
    with engine.connect() as connection:
        if customer_ref is not None:
            _require_customer(connection, company_id, customer_ref)
        rows = connection.execute(text(query).columns(computed_at=UTCDateTime()), params).all()
    found = [CustomerHealth(*row) for row in rows]
    found.sort(key=lambda h: (h.score is None, h.score or 0, h.customer_ref))
    return found


def _require_customer(connection: Connection, company_id: str, customer_ref: str) -> None:
    exists = connection.scalar(
        select(CUSTOMERS.c.id).where(CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.ref == customer_ref)
    )
    if exists is None:
        raise NotFound(f"company {company_id!r} has no customer {customer_ref!r}")


def _score_key(company_id: str, customer_ref: str) -> tuple:
    return (SCORES.c.company_id == company_id, SCORES.c.customer_ref == customer_ref)
