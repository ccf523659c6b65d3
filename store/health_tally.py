"""The customer health tally of a whole company in one set-based SQL pass.

`portal_rules.health.tally` defines the counts and sums over invoices; this computes the
same per customer in the database (no row per invoice in Python), on SQLite and PostgreSQL.
Tests hold the two equal on the same invoices.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date

from sqlalchemy import Connection, Date, bindparam, text

from portal_rules.health import Tally, window_start
from store.types import Money

_TALLY = """
WITH cleared AS (
    SELECT a.invoice_ref, MAX(a.allocated_on) AS cleared_on
    FROM allocations a
    WHERE a.company_id = :company AND {owner_live} AND {source_live}
    GROUP BY a.invoice_ref
), counted AS (
    SELECT i.customer_ref,
           CASE WHEN i.total > 0 THEN i.total ELSE 0 END AS weight,
           CASE WHEN i.balance > 0 THEN 1 ELSE 0 END AS is_open,
           CASE WHEN i.balance <= 0 AND {cleared} IS NULL THEN 1 ELSE 0 END AS undated,
           CASE WHEN i.balance > 0 THEN {days_open}
                WHEN {cleared} IS NULL THEN 0
                ELSE {days_paid} END AS late_days
    FROM invoices i
    LEFT JOIN cleared k ON k.invoice_ref = i.ref
    WHERE i.company_id = :company AND i.visible = {true}
      AND i.due_date BETWEEN :start AND :today {only}
)
SELECT customer_ref,
       COUNT(*) AS invoices,
       SUM(CASE WHEN late_days > 0 THEN 1 ELSE 0 END) AS late,
       SUM(late_days) AS days,
       SUM(weight) AS weight,
       SUM(weight * late_days) AS weighted_days,
       SUM(CASE WHEN late_days > 0 THEN weight ELSE 0 END) AS late_weight,
       SUM(1 - is_open) AS paid,
       SUM(CASE WHEN is_open = 0 AND late_days > 0 THEN 1 ELSE 0 END) AS paid_late,
       SUM(CASE WHEN is_open = 0 THEN late_days ELSE 0 END) AS paid_late_days,
       SUM(undated) AS undated,
       SUM(CASE WHEN is_open = 1 AND late_days > 0 THEN 1 ELSE 0 END) AS overdue,
       MIN(CASE WHEN is_open = 1 AND late_days > 0 THEN late_days END) AS overdue_min_days,
       MAX(CASE WHEN is_open = 1 AND late_days > 0 THEN late_days END) AS overdue_max_days,
       SUM(CASE WHEN is_open = 1 AND late_days = 0 THEN 1 ELSE 0 END) AS due_today
FROM counted
GROUP BY customer_ref"""

_COLUMNS = ("customer_ref", *(f.name for f in fields(Tally)))

# The date a paid invoice was cleared: the latest of its live allocations (owner and source live).
_CLEARED = "k.cleared_on"


def _live(kind_column: str, ref_column: str, false: str) -> str:
    """An allocation's owner or source (named by these columns) is a live payment or credit."""
    return f"""(
        ({kind_column} = 'payment' AND EXISTS (SELECT 1 FROM payments p
            WHERE p.company_id = a.company_id AND p.ref = {ref_column}
              AND p.voided = {false} AND p.deleted = {false}))
        OR ({kind_column} = 'credit' AND EXISTS (SELECT 1 FROM credits r
            WHERE r.company_id = a.company_id AND r.ref = {ref_column}
              AND r.voided = {false} AND r.deleted = {false} AND r.draft = {false})))"""


def _sql(dialect: str, one_customer: bool) -> str:
    if dialect == "sqlite":

        def days(later: str, earlier: str) -> str:
            return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"

        least, greatest, true, false = "min", "max", "1", "0"
    else:

        def days(later: str, earlier: str) -> str:
            return f"({later} - {earlier})"

        least, greatest, true, false = "LEAST", "GREATEST", "TRUE", "FALSE"
    today = "CAST(:today AS DATE)" if dialect != "sqlite" else ":today"
    return _TALLY.format(
        cleared=_CLEARED,
        owner_live=_live("a.owner_kind", "a.owner_ref", false),
        source_live=_live("a.source_kind", "a.source_ref", false),
        days_open=days(today, "i.due_date"),
        days_paid=f"{greatest}(0, {days(f'{least}({_CLEARED}, {today})', 'i.due_date')})",
        true=true,
        only="AND i.customer_ref = :customer" if one_customer else "",
    )


def company_tallies(
    connection: Connection, company_id: str, today: date, customer_ref: str | None = None
) -> dict[str, Tally]:
    """customer_ref -> Tally over the company's visible invoices due in the window on `today`."""
    query = (
        text(_sql(connection.dialect.name, customer_ref is not None))
        .bindparams(bindparam("start", type_=Date()), bindparam("today", type_=Date()))
        .columns(weight=Money(), weighted_days=Money(), late_weight=Money())
    )
    params = {"company": company_id, "start": window_start(today), "today": today}
    if customer_ref is not None:
        params["customer"] = customer_ref
    result = connection.execute(query, params)
    if tuple(result.keys()) != _COLUMNS:  # the SELECT list and the dataclass must stay in step
        raise RuntimeError(f"tally columns {tuple(result.keys())} differ from {_COLUMNS}")
    return {ref: Tally(*counts) for ref, *counts in result}
